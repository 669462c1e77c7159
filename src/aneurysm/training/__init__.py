"""Training: the fold loop (epochs, checkpoints, resume), the step (augmentation on the device,
precision, accumulation), the losses, and the train/loss/augment settings."""
