"""The torchzygote benchmark suite: ``python -m benchmarks --help``."""
