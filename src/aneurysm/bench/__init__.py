"""Measurements the benchmark scripts share (``scripts/benchmark.py``,
``scripts/profile_training.py``): training overhead against a bare loop, and the data path
around training. A module, so that no script has to import another script.

Timing belongs in those scripts, never in the tests. Nothing in the library imports this.
"""
