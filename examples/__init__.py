"""The user-facing examples: ``python -m examples.cartpole``, ``python -m examples.pkpd``,
``python -m examples.torch_interop`` (run from the project root)."""
