"""``python -m examples.pkpd [--quick] ...`` (from the project root): see pkpd.py."""
from .pkpd import main

main()
