"""torchzygote and torch autograd together (see ``torch_interop.py``)."""
