"""model sub-package of the core."""
