"""Thin napari dock widgets over the core. Only this package (and the npe2 hooks) may import napari, Qt or magicgui."""
