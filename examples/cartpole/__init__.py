"""Differentiable CartPole against model-free RL (see ``cartpole.py``)."""
