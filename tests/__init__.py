"""The test suite (a regular package, so a ``tests`` package another distribution installs into site-packages cannot shadow it)."""
