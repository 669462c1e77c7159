"""A torch Dataset over StudyArrays: uint8 views -> float tensors, augmented when training."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .arrays import StudyArrays
from .augment import AugmentConfig, mirror_study, view_transform


class StudyDataset(Dataset):
    def __init__(self, arrays: StudyArrays, augment: AugmentConfig | None = None) -> None:
        self.arrays = arrays
        self.augment = augment if augment is not None and augment.enabled else None
        size = arrays.images.shape[-1] if len(arrays) else 1
        self.transform = view_transform(self.augment, size) if self.augment else None

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a = self.arrays
        images = torch.from_numpy(a.images[i]).float().div_(255.0).unsqueeze(1)  # (V, 1, S, S)
        sample = {
            "images": images,
            "view_ids": torch.from_numpy(a.view_ids[i]),
            "view_mask": torch.from_numpy(a.view_mask[i]),
            "presence": torch.tensor(a.presence[i]),
            "presence_known": torch.tensor(a.presence_known[i]),
            "locations": torch.from_numpy(a.locations[i]),
            "location_known": torch.from_numpy(a.location_known[i]),
            "group_members": torch.from_numpy(a.group_members[i]),
            "group_targets": torch.from_numpy(a.group_targets[i]),
            "group_valid": torch.from_numpy(a.group_valid[i]),
        }
        if self.augment is None:
            return sample
        if self.augment.lr_swap and torch.rand(()) < self.augment.lr_swap_prob:
            sample = mirror_study(sample)
        views = [torch.as_tensor(self.transform(img)).float() if present else img
                 for img, present in zip(sample["images"], sample["view_mask"])]
        sample["images"] = torch.stack(views).clamp_(0.0, 1.0)
        return sample
