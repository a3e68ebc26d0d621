"""active sub-package of the core."""
