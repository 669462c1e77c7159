"""Model inputs: study arrays from the cache, batches and their left-right mirror, datasets,
patient-level folds, and the torch.distributed helpers training and prediction share."""
