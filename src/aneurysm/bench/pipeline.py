"""The data path around training, measured on real files the synthesizers write:

- **loader**: studies/s from JPEGs into a cold cache, from the warm cache, and from memory into
  augmented device batches (what every training step waits on);
- **memory**: peak resident memory of ``finetune`` at N and scale x N patients, each in a fresh process;
- **io**: a 512 x 512 x 300 DICOM series read by ``load_dicom_series`` against a bare pydicom
  loop over the same files, and the angiographic projection of that volume;
- **inference**: per-patient latency of ``predict_run`` with every fold's model ensembled, and
  of the same run exported to ONNX and predicted by its stand-alone ``predict.py``.

Used by ``scripts/benchmark.py``; timing belongs in the scripts, never in the tests.
"""

from __future__ import annotations

import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import torch
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from torch.utils.data import DataLoader

from ..data.arrays import build_arrays
from ..data.dataset import StudyDataset
from ..preprocessing import ImageCache
from ..registry import get_adapter
from ..synth.kium import SynthConfig, write_kium
from ..training.steps import to_device


def kium_root(folder: Path, patients: int, test: int, size: int) -> Path:
    root = folder / f"kium-{patients}-{test}-{size}"
    if not root.is_dir():
        write_kium(root, SynthConfig(patients=patients, test=test, seed=11, image_size=size),
                   progress=False)
    return root


def measure_loader(config, root: Path, device, consumption: float | None) -> dict:
    """Studies/s cold (JPEG -> cache), warm (cache -> arrays) and per training step."""
    records = get_adapter("kium").load(root, "train")
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = ImageCache(cache_dir, config.preprocess)
        start = time.perf_counter()
        arrays, _, _ = build_arrays(records, cache, progress=False)
        cold = len(records) / (time.perf_counter() - start)
        start = time.perf_counter()
        arrays, _, _ = build_arrays(records, cache, progress=False)
        warm = len(records) / (time.perf_counter() - start)
    loader = DataLoader(StudyDataset(arrays), batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    gen = torch.Generator(device=device).manual_seed(0)
    n, start = 0, time.perf_counter()
    for batch in itertools.islice(itertools.cycle(loader), 40):
        out = to_device(batch, device, config.augment, gen)
        n += len(out["images"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_rate = n / (time.perf_counter() - start)
    held = sum(getattr(arrays, f).nbytes for f in ("images", "footprints", "arteries"))
    result = {"studies": len(records), "image_size": config.preprocess.image_size,
              "arrays_bytes_per_study": held / len(records),
              "cold_studies_per_s": cold, "warm_studies_per_s": warm,
              "augmented_batches_studies_per_s": step_rate,
              "model_consumes_studies_per_s": consumption}
    if consumption:
        result["headroom"] = step_rate / consumption
    return result


_CHILD = """
import json, resource, sys
from aneurysm.config import load_config
from aneurysm.registry import get_adapter
from aneurysm.workflows.finetune import finetune
root, n, out, cfg = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
records = get_adapter("kium").load(root, "train")[:n]
finetune(out, records, load_config(cfg), folds=2, progress=False)
print(json.dumps({"patients": len(records),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_rss_mb":
                      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measure_memory(root: Path, n: int, folder: Path, config_path: Path, scale: int = 5) -> dict:
    """Peak RSS of a 2-fold, 1-epoch ``finetune`` at n and scale x n patients, fresh
    processes."""
    peaks, children = {}, {}
    for patients in (n, scale * n):
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(patients),
                               str(folder / f"mem-{patients}"), str(config_path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        line = json.loads(proc.stdout.strip().splitlines()[-1])
        peaks[patients] = line["peak_rss_mb"]
        children[patients] = line["children_peak_rss_mb"]
    small, large = peaks[n], peaks[scale * n]
    return {"peak_rss_mb": peaks, "growth": large / small - 1.0, "scale": scale,
            "loader_workers_peak_rss_mb": children}


def write_dicom_series(folder: Path, shape=(512, 512, 300), spacing: float = 0.35) -> Path:
    """A CTA-like series of single-frame slices with a bright tube through a dark head."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols, nz = shape
    yy, xx = np.mgrid[:rows, :cols]
    head = ((yy - rows / 2) ** 2 + (xx - cols / 2) ** 2 < (0.45 * rows) ** 2) * 1064
    series, study = generate_uid(), generate_uid()
    for k in range(nz):
        cx = cols / 2 + 60 * np.sin(k / 40)
        tube = ((yy - rows / 2) ** 2 + (xx - cx) ** 2 < 36) * 300
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, \
            meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID, ds.StudyInstanceUID, ds.Modality = series, study, "CT"
        ds.Rows, ds.Columns = rows, cols
        ds.PixelSpacing, ds.SliceThickness = [spacing, spacing], spacing
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, k * spacing]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = (head + tube).astype(np.uint16).tobytes()
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
    return folder


def bare_pydicom(folder: Path) -> np.ndarray:
    """The minimal read: every file, sorted by z, rescaled, stacked."""
    slices = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    slices.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    return np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
                     for d in slices], axis=-1)


def measure_io(folder: Path, rounds: int, shape=(512, 512, 300)) -> dict:
    from ..io.dicom_series import load_dicom_series
    from ..projection import ProjectionConfig
    from ..projection.render import project_volume

    series = folder / f"dicom-{'x'.join(map(str, shape))}"
    if not series.is_dir():
        write_dicom_series(series, shape)
    ours, bare = [], []
    for _ in range(rounds):  # alternating, so page-cache warmth is shared alike
        start = time.perf_counter()
        volume = load_dicom_series(series)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        bare_pydicom(series)
        bare.append(time.perf_counter() - start)
    project = []
    spacing = volume.spacing
    for mode in ("drr",):
        config = ProjectionConfig(mode=mode).resolved(128)
        for _ in range(rounds):
            start = time.perf_counter()
            project_volume(volume.data.astype(np.float32), spacing, "CTA", config)
            project.append(time.perf_counter() - start)
    return {"shape": list(volume.data.shape), "ours_read_s": ours, "bare_pydicom_read_s": bare,
            "read_ratio": float(np.median(bare) / np.median(ours)),
            "projection_s": project, "projection_volumes_per_s": 1 / float(np.median(project))}


def measure_inference(run: Path, root: Path, rounds: int) -> dict:
    from ..inference.predict import predict_run

    records = get_adapter("kium").load(root, "test")
    folds = len(list(run.glob("fold_*/best.safetensors")))
    times = []
    with tempfile.TemporaryDirectory() as out:
        for k in range(rounds + 1):  # the first fills the cache: reported apart, as cold
            start = time.perf_counter()
            predict_run(run, records, Path(out) / f"o{k}.csv", progress=False)
            times.append((time.perf_counter() - start) / len(records))
    result = {"patients": len(records), "folds_ensembled": folds,
              "cold_s_per_patient": times[0], "warm_s_per_patient": times[1:],
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return result  # without the export extra, torch alone
    return {**result, **measure_exported(run, root, rounds, len(records))}


def measure_exported(run: Path, root: Path, rounds: int, patients: int) -> dict:
    """The same run exported to ONNX, predicted by its stand-alone ``predict.py`` in this
    process: every call decodes and cleans the JPEGs, as a cold ``predict`` does."""
    import importlib.util

    from ..workflows.export import export_run

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        export_run(run, Path(out) / "export")
        export_s = time.perf_counter() - start
        spec = importlib.util.spec_from_file_location("exported_predict",
                                                      Path(out) / "export" / "predict.py")
        predictor = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(predictor)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            predictor.predict(Path(out) / "export", root / "test_set", warn=lambda m: None)
            times.append((time.perf_counter() - start) / patients)
    return {"export_s": export_s, "onnxruntime_s_per_patient": times}
