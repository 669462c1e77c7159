"""Training: study arrays from the cache, augmentation, patient-level folds, the fold loop."""
