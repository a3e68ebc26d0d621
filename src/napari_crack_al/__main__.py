"""``python -m napari_crack_al`` (and ``torchrun ... -m napari_crack_al``): the command line."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
