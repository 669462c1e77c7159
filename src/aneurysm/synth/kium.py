"""Write a complete synthetic K-ium root: ``train_set/``, ``test_set/`` and ``groundtruth.csv``."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from tqdm import tqdm

from ..errors import AneurysmError
from ..io.images import write_image
from ..schema import KIUM_COLUMNS, KIUM_VIEWS, LOCATION_NAMES
from ..schema.sizes import SIZE_COLUMNS, SIZES_FILE
from .anatomy import add_aneurysms, sample_anatomy
from .cohort import PREVALENCE, sample_cohort_labels, sample_indices
from .dsa import render_dsa, sample_pose

#: Image sizes (width, height) seen in the real data, used by ``messy``.
REAL_SIZES: tuple[tuple[int, int], ...] = (
    (720, 720), (776, 776), (960, 960), (1024, 1024), (940, 750), (1000, 800), (1250, 1000),
    (1670, 1000),
)


@dataclass(frozen=True)
class SynthConfig:
    patients: int = 200
    test: int = 50
    seed: int = 0
    image_size: int = 512
    prevalence: float = PREVALENCE
    messy: bool = False  # mixed sizes, 3-channel files, border bands with text, a duplicate
    jpeg_quality: int = 92


@dataclass(frozen=True)
class _PatientJob:
    index: int
    locations: tuple[str, ...]
    folder: str
    seed: tuple[int, ...]
    image_size: int
    messy: bool
    jpeg_quality: int


def _add_border_band(image: np.ndarray, rng: np.random.Generator, index: int) -> np.ndarray:
    """A black band with burned-in white text along one edge, like a scanner overlay."""
    h, w = image.shape
    band = int(rng.integers(max(h // 20, 12), max(h // 10, 24)))
    out = image.copy()
    edge = rng.choice(["bottom", "top", "left"])
    if edge == "bottom":
        out[h - band:, :] = rng.integers(0, 12)
        box = (8, h - band + band // 4)
    elif edge == "top":
        out[:band, :] = rng.integers(0, 12)
        box = (8, band // 4)
    else:
        out[:, :band] = rng.integers(0, 12)
        box = (2, h // 2)
    pil = Image.fromarray(out)
    ImageDraw.Draw(pil).text(box, f"ID {index}  {rng.integers(1, 99)}kV", fill=245)
    return np.asarray(pil)


def _render_patient(job: _PatientJob) -> tuple[dict[str, list], dict[str, float]]:
    """The patient's eight views on disk; where each aneurysm projects in each view, and each
    aneurysm's radius in mm (its main sac, by location)."""
    rng = np.random.default_rng(list(job.seed))
    anatomy = add_aneurysms(sample_anatomy(rng), list(job.locations), rng)
    sizes: dict[str, float] = {}
    for sphere in anatomy.spheres:
        if sphere.location is not None:
            sizes[sphere.location] = max(sizes.get(sphere.location, 0.0), sphere.radius)
    pose = sample_pose(rng)
    marks: dict[str, list] = {}
    folder = Path(job.folder)
    for view in KIUM_VIEWS:
        if job.messy:
            w, h = REAL_SIZES[int(rng.integers(0, len(REAL_SIZES)))]
        else:
            w = h = job.image_size
        image, view_marks = render_dsa(anatomy, view, pose, (h, w), rng)
        marks[view.name] = view_marks
        if job.messy and rng.random() < 0.15:
            image = _add_border_band(image, rng, job.index)
        pil = Image.fromarray(image)
        if job.messy and rng.random() < 0.3:
            pil = pil.convert("RGB")
        write_image(folder / f"{job.index}{view.name}.jpg", pil, quality=job.jpeg_quality)
    return marks, sizes


def _label_row(index: int, locations: tuple[str, ...] | list[str]) -> list[int]:
    return [index, int(bool(locations))] + [int(n in locations) for n in LOCATION_NAMES]


def write_kium(out: str | Path, config: SynthConfig = SynthConfig(), force: bool = False,
               workers: int | None = None, progress: bool = True) -> Path:
    """Render a synthetic K-ium root into ``out``; written whole into a temp folder, then renamed."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise AneurysmError(f"{out}: already exists and is not empty (use --force to replace it)")
    if config.patients < 1 or config.test < 0:
        raise AneurysmError("synth needs --patients >= 1 and --test >= 0")
    rng = np.random.default_rng(config.seed)
    train_idx = sample_indices(rng, config.patients, 1001)
    test_idx = sample_indices(rng, config.test, max(3001, train_idx[-1] + 1000))
    train_labels = sample_cohort_labels(rng, config.patients, config.prevalence)
    test_labels = sample_cohort_labels(rng, config.test, config.prevalence)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "train_set").mkdir()
        (tmp / "test_set").mkdir()
        jobs = [
            _PatientJob(i, tuple(locs), str(tmp / folder), (config.seed, i), config.image_size,
                        config.messy, config.jpeg_quality)
            for folder, idx, labels in (("train_set", train_idx, train_labels),
                                         ("test_set", test_idx, test_labels))
            for i, locs in zip(idx, labels)
        ]
        rendered = _run_jobs(jobs, workers, progress)
        marks = [m for m, _ in rendered]
        train = pd.DataFrame([_label_row(i, l) for i, l in zip(train_idx, train_labels)],
                             columns=list(KIUM_COLUMNS))
        truth = pd.DataFrame([_label_row(i, l) for i, l in zip(test_idx, test_labels)],
                             columns=list(KIUM_COLUMNS))
        blank = truth.copy()
        blank.iloc[:, 1:] = 0
        train.to_csv(tmp / "train_set" / "train.csv", index=False)
        blank.to_csv(tmp / "test_set" / "test.csv", index=False)
        truth.to_csv(tmp / "groundtruth.csv", index=False)
        _write_marks(tmp / "aneurysm_positions.csv", jobs, marks)
        _write_sizes(tmp / SIZES_FILE, jobs, [s for _, s in rendered])
        if config.messy:
            victim = train_idx[min(4, len(train_idx) - 1)]
            shutil.copyfile(tmp / "train_set" / f"{victim}LI-A.jpg",
                            tmp / "train_set" / f"{victim}LI-A (1).jpg")
        (tmp / "synth_config.yaml").write_text(
            "".join(f"{k}: {v}\n" for k, v in asdict(config).items()))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _run_jobs(jobs: list[_PatientJob], workers: int | None, progress: bool) -> list[tuple]:
    bar = tqdm(total=len(jobs), desc="synth kium", unit="patient", disable=not progress)
    try:
        if workers == 1 or len(jobs) < 4:
            results = []
            for job in jobs:
                results.append(_render_patient(job))
                bar.update()
            return results
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = []
            for r in pool.map(_render_patient, jobs, chunksize=2):
                results.append(r)
                bar.update()
            return results
    finally:
        bar.close()


def _write_marks(path: Path, jobs: list[_PatientJob], marks: list[dict]) -> None:
    """Where each aneurysm projects in each view: ground truth for looking, not for training."""
    rows = [
        (job.index, Path(job.folder).name, view, loc, round(x, 1), round(y, 1), round(r, 1))
        for job, m in zip(jobs, marks) for view, items in m.items() for loc, x, y, r in items
    ]
    pd.DataFrame(rows, columns=["Index", "set", "view", "location", "x", "y", "radius"]).to_csv(
        path, index=False)


def _write_sizes(path: Path, jobs: list[_PatientJob], sizes: list[dict[str, float]]) -> None:
    """Each aneurysm's radius in mm: what the AUROC by size is read from."""
    rows = [(job.index, Path(job.folder).name, loc, round(r, 2))  # Index, set, location, radius
            for job, s in zip(jobs, sizes) for loc, r in sorted(s.items())]
    pd.DataFrame(rows, columns=["Index", "set", *SIZE_COLUMNS[1:]]).to_csv(path, index=False)


def save_preview(root: str | Path, path: str | Path, index: int | None = None) -> Path:
    """Montage of one synthetic patient's eight views with its aneurysms circled."""
    from ..io.images import load_grayscale
    from ..io.montage import save_montage

    root = Path(root)
    train = pd.read_csv(root / "train_set" / "train.csv")
    if index is None:
        positives = train[train["Aneurysm"] == 1]
        index = int((positives if len(positives) else train)["Index"].iloc[0])
    row = train[train["Index"] == index]
    if row.empty:
        raise AneurysmError(f"{root}: no training patient with Index {index}")
    labels = [c for c in LOCATION_NAMES if int(row[c].iloc[0]) == 1]
    positions = root / "aneurysm_positions.csv"
    marks_table = pd.read_csv(positions) if positions.is_file() else None
    images, titles, marks = [], [], []
    for view in KIUM_VIEWS:
        images.append(load_grayscale(root / "train_set" / f"{index}{view.name}.jpg"))
        titles.append(view.name)
        if marks_table is not None:
            m = marks_table[(marks_table["Index"] == index) & (marks_table["view"] == view.name)]
            marks.append([(r.x, r.y, r.radius) for r in m.itertuples()])
    title = f"patient {index}: " + (", ".join(labels) if labels else "no aneurysm")
    return save_montage(images, titles, path, suptitle=title, marks=marks)
