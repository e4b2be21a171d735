"""Long-running differential sweeps (not collected by pytest: run them as modules)."""
