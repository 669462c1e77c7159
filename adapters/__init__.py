"""Built-in data-set adapters, one module per source.

Installed as the package ``aneurysm_adapters`` and registered through the ``aneurysm.adapters``
entry-point group, the same way a user's own adapter package registers.
"""
