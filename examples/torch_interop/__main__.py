"""``python -m examples.torch_interop``: see ``torch_interop.py``."""
from .torch_interop import main

main()
