"""Synthetic external sources: the K-ium anatomy model voxelised into 3-D volumes, written in
each public data set's exact on-disk layout (RSNA 2025 with some vessel segmentations, ADAM,
Lausanne, CADA, TopCoW)."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import AneurysmError
from .anatomy import add_aneurysms, sample_anatomy
from .cohort import sample_cohort_labels
from .dicom_writer import write_series
from .volume import voxelise

#: RSNA location columns, in the competition's order.
RSNA_LOCATIONS: tuple[str, ...] = (
    "Left Infraclinoid Internal Carotid Artery", "Right Infraclinoid Internal Carotid Artery",
    "Left Supraclinoid Internal Carotid Artery", "Right Supraclinoid Internal Carotid Artery",
    "Left Middle Cerebral Artery", "Right Middle Cerebral Artery",
    "Anterior Communicating Artery", "Left Anterior Cerebral Artery",
    "Right Anterior Cerebral Artery", "Left Posterior Communicating Artery",
    "Right Posterior Communicating Artery", "Basilar Tip", "Other Posterior Circulation",
)


@dataclass(frozen=True)
class ExternalSynthConfig:
    rsna: int = 16
    adam: int = 10
    lausanne: int = 10
    cada: int = 6
    topcow: int = 4  # patients, each with a CTA and an MRA (aneurysm-free, artery labels)
    seed: int = 0
    spacing: float = 1.5  # mm; real scans are finer, this keeps files small
    prevalence: float = 0.5

    @property
    def cases(self) -> int:
        """Volumes written: a TopCoW patient has two."""
        return self.rsna + self.adam + self.lausanne + self.cada + 2 * self.topcow


def _kium_to_rsna(loc: str, rng: np.random.Generator) -> str:
    side, _, artery = loc.partition("_") if "_" in loc else ("", "", loc)
    word = {"L": "Left", "R": "Right"}.get(side, "")
    if artery in ("ICA", "AntChor"):  # RSNA files AntChor aneurysms under supraclinoid ICA
        part = "Supraclinoid" if artery == "AntChor" or rng.random() < 0.6 else "Infraclinoid"
        return f"{word} {part} Internal Carotid Artery"
    if artery == "ACOM":
        return "Anterior Communicating Artery"
    if artery == "BA":
        return "Basilar Tip"
    if artery in ("VA", "PICA", "SCA", "PCA"):
        return "Other Posterior Circulation"
    return f"{word} " + {"MCA": "Middle Cerebral Artery", "ACA": "Anterior Cerebral Artery",
                         "PCOM": "Posterior Communicating Artery"}[artery]


def _maybe_reorient(image: np.ndarray, affine: np.ndarray, flip: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Store some volumes in LPS voxel order so readers must reorient to canonical."""
    if not flip:
        return image, affine
    n = np.array(image.shape[:3])
    flipper = np.diag([-1.0, -1.0, 1.0, 1.0])
    flipper[:3, 3] = [n[0] - 1, n[1] - 1, 0]
    return image[::-1, ::-1, :].copy(), affine @ flipper


def _save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))


@dataclass(frozen=True)
class _Case:
    source: str
    number: int
    locations: tuple[str, ...]
    folder: str
    seed: tuple[int, ...]
    spacing: float
    modality: str


def _render_case(case: _Case) -> dict:
    rng = np.random.default_rng(list(case.seed))
    anatomy = add_aneurysms(sample_anatomy(rng), list(case.locations), rng)
    if case.source == "topcow":
        return _write_topcow(Path(case.folder), case, anatomy, rng)
    injection = None
    if case.source == "cada":
        # a 3DRA shows one injected territory: inject the artery that fills the aneurysm
        fills = anatomy.segment(anatomy.aneurysms[0].segment).fills
        injection = max(("LI", "RI", "LV", "RV"), key=lambda inj: fills.get(inj, 0.0))
    modality = {"adam": "TOF", "lausanne": "TOF", "cada": "3DRA"}.get(
        case.source, "CTA" if case.modality == "CTA" else "TOF")
    vol = voxelise(anatomy, modality, case.spacing, rng, injection)
    root = Path(case.folder)
    flip = bool(rng.random() < 0.5)
    info: dict = {"number": case.number, "locations": case.locations, "flip": flip}
    if case.source == "adam":
        _write_adam(root, case, vol, flip, rng, info)
    elif case.source == "lausanne":
        _write_lausanne(root, case, vol, flip, info)
    elif case.source == "cada":
        _write_cada(root, case, vol, flip)
    else:
        rsna_name = {loc: _kium_to_rsna(loc, rng) for loc in case.locations}
        info.update(write_series(root, vol, case.modality, case.number, rng))
        if case.number % 3 == 0:  # a share of series with vessel segmentations, as in RSNA
            uid = info["series_uid"]  # laid out flat and per series, both seen in public code
            folder = root.parent / "segmentations" / ("" if case.number % 2 == 0 else uid)
            _save_nifti(folder / f"{uid}.nii", vol.image.astype(np.float32), vol.affine)
            _save_nifti(folder / f"{uid}_cowseg.nii", vol.arteries, vol.affine)
        info["localizers"] = [(sop, x, y, f, rsna_name[vol.lesion_locations[k - 1]])
                              for sop, x, y, f, k in info["localizers"]]
        info["rsna_labels"] = sorted(set(rsna_name.values()))
    return info


def _write_adam(root: Path, case: _Case, vol, flip: bool, rng: np.random.Generator,
                info: dict) -> None:
    folder = root / f"{10001 + case.number}"
    image, affine = _maybe_reorient(vol.image.astype(np.int16), vol.affine, flip)
    labels, _ = _maybe_reorient(vol.lesions, vol.affine, flip)
    adam_labels = np.zeros_like(labels)
    lines = []
    treated = int(labels.max()) if labels.max() > 1 and rng.random() < 0.3 else 0
    for k in range(1, int(labels.max()) + 1):
        voxels = np.argwhere(labels == k)
        if k == treated:
            adam_labels[labels == k] = 2  # treated aneurysm: neither positive nor negative
            continue
        adam_labels[labels == k] = 1
        centre = voxels.mean(axis=0)
        radius = (len(voxels) * 3 / (4 * np.pi)) ** (1 / 3)
        lines.append(", ".join(f"{v:.1f}" for v in (*centre, radius)))
    for sub in ("orig", "pre"):
        _save_nifti(folder / sub / "TOF.nii.gz", image, affine)
    small = image[::4, ::4, ::4]
    small_affine = affine @ np.diag([4.0, 4.0, 4.0, 1.0])
    _save_nifti(folder / "orig" / "struct.nii.gz", small, small_affine)
    _save_nifti(folder / "pre" / "struct_aligned.nii.gz", small, small_affine)
    _save_nifti(folder / "aneurysms.nii.gz", adam_labels.astype(np.uint8), affine)
    (folder / "location.txt").write_text("".join(line + "\n" for line in lines))
    info["treated"] = bool(treated)


def _write_lausanne(root: Path, case: _Case, vol, flip: bool, info: dict) -> None:
    sub = f"sub-{case.number + 1:03d}"
    ses = f"ses-2011{(case.number % 12) + 1:02d}{(case.number % 27) + 1:02d}"
    image, affine = _maybe_reorient(vol.image.astype(np.float32), vol.affine, flip)
    labels, _ = _maybe_reorient(vol.lesions, vol.affine, flip)
    _save_nifti(root / sub / ses / "anat" / f"{sub}_{ses}_angio.nii.gz", image, affine)
    masks = root / "derivatives" / "manual_masks" / sub / ses / "anat"
    for k in range(1, int(labels.max()) + 1):
        _save_nifti(masks / f"{sub}_{ses}_desc-Lesion_{k}_mask.nii.gz",
                    (labels == k).astype(np.uint8), affine)
    info["participant"] = sub


def _write_cada(root: Path, case: _Case, vol, flip: bool) -> None:
    name = f"A{case.number + 1:03d}"
    image, affine = _maybe_reorient(vol.image.astype(np.float32), vol.affine, flip)
    labels, _ = _maybe_reorient(vol.lesions, vol.affine, flip)
    _save_nifti(root / f"{name}_orig.nii.gz", image, affine)
    _save_nifti(root / f"{name}_masks.nii.gz", (labels > 0).astype(np.uint8), affine)
    _save_nifti(root / f"{name}_labeledMasks.nii.gz", labels.astype(np.uint8), affine)


def _write_topcow(root: Path, case: _Case, anatomy, rng: np.random.Generator) -> dict:
    """One TopCoW patient: a CTA and an MRA of the same vessels, each with its Circle-of-Willis
    labels and a region-of-interest box, in the nnU-Net-style layout."""
    for kind, modality in (("ct", "CTA"), ("mr", "TOF")):
        vol = voxelise(anatomy, modality, case.spacing, rng)
        name = f"topcow_{kind}_{case.number + 1:03d}"
        _save_nifti(root / "imagesTr" / f"{name}_0000.nii.gz", vol.image.astype(np.float32),
                    vol.affine)
        _save_nifti(root / "cow_seg_labelsTr" / f"{name}.nii.gz", vol.arteries, vol.affine)
        labelled = np.argwhere(vol.arteries > 0)
        lo, hi = labelled.min(axis=0), labelled.max(axis=0)
        (root / "roi_loc_labelsTr").mkdir(parents=True, exist_ok=True)
        (root / "roi_loc_labelsTr" / f"{name}.txt").write_text(
            "Size of Region of Interest: " + " ".join(str(int(v)) for v in hi - lo + 1) + "\n"
            "Location of Region of Interest: " + " ".join(str(int(v)) for v in lo) + "\n")
    return {"number": case.number}


def write_external(out: str | Path, config: ExternalSynthConfig = ExternalSynthConfig(),
                   force: bool = False, workers: int | None = None,
                   progress: bool = True) -> Path:
    """Write ``rsna2025/``, ``adam/``, ``lausanne/``, ``cada/`` and ``topcow/`` under ``out``
    (a data root); a source with no cases is not written."""
    out = Path(out)
    names = ("rsna2025", "adam", "lausanne", "cada", "topcow")
    existing = [n for n in names if (out / n).exists()]
    if existing and not force:
        raise AneurysmError(f"{out}: {', '.join(existing)} already exist (use --force)")
    rng = np.random.default_rng(config.seed + 7919)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".external.", dir=out))
    try:
        cases = []
        for source, count, prevalence in (("rsna2025", config.rsna, config.prevalence),
                                          ("adam", config.adam, max(config.prevalence, 0.8)),
                                          ("lausanne", config.lausanne, config.prevalence),
                                          ("cada", config.cada, 1.0),
                                          ("topcow", config.topcow, 0.0)):
            labels = sample_cohort_labels(rng, count, prevalence)
            for i, locs in enumerate(labels):
                modality = ("CTA" if rng.random() < 0.6 else "MRA") if source == "rsna2025" \
                    else "MRA"
                folder = tmp / source / ("series" if source == "rsna2025" else "")
                cases.append(_Case(source, i, tuple(locs), str(folder),
                                   (config.seed, names.index(source), i), config.spacing,
                                   modality))
        infos = _run(cases, workers, progress)
        _write_tables(tmp, cases, infos)
        for n in names:
            if (out / n).exists():
                shutil.rmtree(out / n)
            if (tmp / n).exists():
                (tmp / n).rename(out / n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _run(cases: list[_Case], workers: int | None, progress: bool) -> list[dict]:
    bar = dict(total=len(cases), desc="synth external", unit="case", disable=not progress)
    if workers == 1 or len(cases) < 4:
        return [_render_case(c) for c in tqdm(cases, **bar)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(_render_case, cases), **bar))


def _write_tables(tmp: Path, cases: list[_Case], infos: list[dict]) -> None:
    rsna_rows, loc_rows, participants = [], [], []
    for case, info in zip(cases, infos):
        if case.source == "rsna2025":
            row = {"SeriesInstanceUID": info["series_uid"], "PatientAge": 40 + case.number % 40,
                   "PatientSex": "Female" if case.number % 3 else "Male",
                   "Modality": case.modality}
            row.update({c: int(c in info["rsna_labels"]) for c in RSNA_LOCATIONS})
            row["Aneurysm Present"] = int(bool(case.locations))
            rsna_rows.append(row)
            for sop, x, y, frame, label in info["localizers"]:
                coords = {"x": round(x, 2), "y": round(y, 2)}
                if frame >= 0:
                    coords["f"] = frame
                loc_rows.append({"SeriesInstanceUID": info["series_uid"],
                                 "SOPInstanceUID": sop, "coordinates": str(coords),
                                 "location": label})
        elif case.source == "lausanne":
            participants.append({"participant_id": info["participant"],
                                 "group": "patient" if case.locations else "control",
                                 "age": 35 + case.number % 40})
    if rsna_rows:
        root = tmp / "rsna2025"
        pd.DataFrame(rsna_rows).to_csv(root / "train.csv", index=False)
        pd.DataFrame(loc_rows, columns=["SeriesInstanceUID", "SOPInstanceUID", "coordinates",
                                        "location"]).to_csv(root / "train_localizers.csv",
                                                            index=False)
        (root / "segmentations").mkdir(exist_ok=True)
    if participants:
        pd.DataFrame(participants).to_csv(tmp / "lausanne" / "participants.tsv", sep="\t",
                                          index=False)
