"""The PK/PD example: ``python -m examples.pkpd`` (see pkpd.py)."""
