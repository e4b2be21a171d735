"""``python -m examples.cartpole``: see ``cartpole.py``."""
from .cartpole import main

main()
