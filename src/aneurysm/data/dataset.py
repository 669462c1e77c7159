"""A torch Dataset over StudyArrays: one study's uint8 views and labels as tensors.

Nothing random happens here: augmentation runs on whole batches on the training device
(``augment.augment_batch``), so the loader only slices arrays that are already in memory.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .arrays import StudyArrays

#: StudyArrays fields a batch carries, under the same names.
BATCH_FIELDS = ("images", "view_ids", "view_mask", "presence", "presence_known", "locations",
                "location_known", "group_members", "group_targets", "group_valid", "footprints",
                "arteries", "projected")


class StudyDataset(Dataset):
    def __init__(self, arrays: StudyArrays) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {name: torch.as_tensor(getattr(self.arrays, name)[i]) for name in BATCH_FIELDS}
        fine = self.arrays.fine_view(i)
        if fine is not None:
            item["fine"] = torch.from_numpy(fine)
        return item
