"""The napari-free core: data I/O, model, training, active learning, metrics, project store.

Nothing below this package may import napari, qtpy or magicgui (an import-linter
contract in ``pyproject.toml`` and ``tests/test_architecture.py`` enforce it).
Submodules are imported explicitly; this ``__init__`` imports nothing heavy.
"""
