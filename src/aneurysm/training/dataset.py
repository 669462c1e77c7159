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
            "view_points": torch.from_numpy(a.view_points[i]),
            "view_points_known": torch.from_numpy(a.view_points_known[i]),
        }
        if self.augment is None:
            return sample
        if self.augment.lr_swap and torch.rand(()) < self.augment.lr_swap_prob:
            sample = mirror_study(sample)
        views = []
        points = sample["view_points"].clone()
        for j, (img, present) in enumerate(zip(sample["images"], sample["view_mask"])):
            if not present:
                views.append(img)
            elif points[j, 0] > 0:
                img, points[j] = self._augment_with_point(img, points[j])
                views.append(img)
            else:
                views.append(torch.as_tensor(self.transform(img)).float())
        sample["images"] = torch.stack(views).clamp_(0.0, 1.0)
        sample["view_points"] = points
        return sample

    def _augment_with_point(self, img: torch.Tensor, point: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Move a point target with the image: a heatmap channel shares the random geometry
        (the Compose's first member), then intensity transforms touch the image alone."""
        size = img.shape[-1]
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        cx, cy = point[1] * size - 0.5, point[2] * size - 0.5
        heat = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.5**2))
        geometry, *intensity = self.transform.transforms
        both = torch.as_tensor(geometry(torch.cat([img, heat[None].float()]))).float()
        img = both[:1]
        for t in intensity:
            img = torch.as_tensor(t(img)).float()
        heat = both[1]
        if heat.max() < 0.3:  # the point left the frame
            return img, torch.zeros(3)
        row, col = divmod(int(torch.argmax(heat)), size)
        return img, torch.tensor([1.0, (col + 0.5) / size, (row + 0.5) / size])
