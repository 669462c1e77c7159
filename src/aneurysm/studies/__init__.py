"""Studies: arms of the experiment config trained side by side over seeds, and their tables.

A study is a YAML file (``configs/studies/*.yaml``): a baseline arm, other arms that each
override a few config keys, seeds and synthetic data sizes. ``aneurysm study run`` draws each
seed's data, runs every distinct arm once per seed (arms whose configs hash alike share a run)
and writes mean ± sd and paired-difference tables; ``aneurysm study diagnose`` and ``by-size``
take finished pretraining runs apart.

This package sits at the top of the library: it may import anything below it (workflows,
data, models); nothing imports it but the CLI. Its modules import torch only inside functions,
so ``aneurysm --help`` stays light.
"""
