"""Files in and out: atomic writes, image decoding, range images, masks and file sniffing.

``atomic`` (crash-safe writes and temp-file cleanup), ``sniff`` (what a file is),
``image_decode`` (bounded decoding of PNG/TIFF/NPY), ``range_io`` (range images and
their folders) and ``mask_io`` (crack masks). Nothing is imported here: import the
module that does the job, e.g. ``from napari_crack_al.core.io.mask_io import read_mask``.
"""
