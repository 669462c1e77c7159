"""Inference: the fold ensemble writes the challenge's output.csv."""
