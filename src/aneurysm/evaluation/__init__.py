"""Evaluation: official K-ium metrics, per-location AUROC/AP, bootstrap intervals, reports."""
