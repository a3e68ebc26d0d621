"""export sub-package of the core."""
