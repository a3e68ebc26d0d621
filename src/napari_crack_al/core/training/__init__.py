"""training sub-package of the core."""
