"""The crack skeleton: one segment graph for the measurements and the erase-crack tool.

``inputs`` prepares a mask (crop, distance transform, thinning); ``graph`` splits its
skeleton into segments between junctions and ends. Nothing is imported here.
"""
