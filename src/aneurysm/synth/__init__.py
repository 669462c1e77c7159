"""Synthetic angiography: a procedural 3-D cerebral vessel model rendered as DSA views.

The anatomy model (``anatomy``) is independent of how it is rendered, so the same patient can be
shown as eight K-ium DSA views (``dsa``) or, later, voxelised into 3-D volumes.
"""
