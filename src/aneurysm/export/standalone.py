#!/usr/bin/env python3
"""Predict a K-ium test folder with a model exported by ``aneurysm export``.

Needs only onnxruntime, numpy, pillow and pandas. ``aneurysm export`` copies this file, as
``predict.py``, beside the fold graphs (``fold_*.onnx``) and ``model.json``, the contract they
were exported under: the image cleaning, the view order and the location thresholds.

    python predict.py --input TEST_FOLDER --output output.csv

TEST_FOLDER holds test.csv and the images ``{Index}{VIEW}.jpg`` (or is a K-ium root with
test_set/). output.csv has the challenge's 23 columns in test.csv's row order: the aneurysm
probability, and each location as 0/1 at the run's thresholds (``--locations prob``: as
probabilities). The image cleaning below repeats ``aneurysm.preprocessing.angiogram`` step for
step; a test holds the two to the same output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from PIL import Image, ImageFile, UnidentifiedImageError

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated JPEG fails, never half-grey
FORMAT = "aneurysm-onnx/1"


class InputError(Exception):
    """Bad input: one line naming the file and the problem."""


# --- images: aneurysm.io.images and aneurysm.preprocessing.angiogram, without scipy ----------
def load_grayscale(path: Path, max_pixels: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.size[0] * img.size[1] > max_pixels:
                raise InputError(f"{path}: refused: declares {img.size[0]} x {img.size[1]} px")
            img.load()
            if img.mode in ("I;16", "I;16B", "I", "F"):
                arr = np.asarray(img, dtype=np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
                return scaled.round().astype(np.uint8)
            if img.mode not in ("L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr"):
                raise InputError(f"{path}: unsupported image mode {img.mode}")
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InputError(f"{path}: not a readable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None


def _run(flags: np.ndarray) -> int:
    stop = np.flatnonzero(~flags)
    return int(stop[0]) if len(stop) else len(flags)


def border_bands(image: np.ndarray, dark: int) -> tuple[int, int, int, int]:
    rows, cols = np.median(image, axis=1) <= dark, np.median(image, axis=0) <= dark
    top, bottom, left, right = _run(rows), _run(rows[::-1]), _run(cols), _run(cols[::-1])
    if top + bottom >= image.shape[0] or left + right >= image.shape[1]:
        return (0, 0, 0, 0)
    return top, bottom, left, right


def dilate_cross(mask: np.ndarray) -> np.ndarray:
    """One binary dilation by the 3 x 3 cross (scipy's default structure), zeros outside."""
    p = np.pad(mask, 1)
    return p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]


def clean_angiogram(image: np.ndarray, p: dict, size: int) -> np.ndarray:
    """DSA polarity, border bands cut, overlay text erased, padded square, resized: uint8."""
    if p["polarity"] != "keep":
        h, w = image.shape
        if float(np.median(image[h // 4:h - h // 4, w // 4:w - w // 4])) < 100.0:
            if p["polarity"] == "refuse":
                raise ValueError("inverted polarity (bright vessels on a dark field)")
            image = 255 - image
    bands = (0, 0, 0, 0)
    if p["remove_border"]:
        cap_h, cap_w = (int(p["max_band_fraction"] * s) for s in image.shape)
        t, b, l, r = border_bands(image, p["border_dark_level"])
        bands = (min(t, cap_h), min(b, cap_h), min(l, cap_w), min(r, cap_w))
    t, b, l, r = bands
    out = image[t:image.shape[0] - b, l:image.shape[1] - r]
    background = int(np.median(out))
    if p["remove_text"]:
        mask = out >= p["text_bright_level"]
        if mask.any():
            out = out.copy()
            out[dilate_cross(mask)] = background
    h, w = out.shape
    if h != w:
        side = max(h, w)
        square = np.full((side, side), background, dtype=out.dtype)
        square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = out
        out = square
    if out.shape[0] != size:
        out = np.array(Image.fromarray(np.ascontiguousarray(out)).resize(
            (size, size), Image.Resampling.LANCZOS))
    return np.ascontiguousarray(out, dtype=np.uint8)


# --- the test folder: aneurysm_adapters.kium's layout ------------------------------------------
def read_test_folder(path: Path, views: list[str], suffixes: list[str]
                     ) -> tuple[list[int], dict[tuple[int, str], Path]]:
    """test.csv's Index values in row order and {(Index, view): image file}."""
    folder = path / "test_set" if (path / "test_set" / "test.csv").is_file() else path
    csv_path = folder / "test.csv"
    if not csv_path.is_file():
        raise InputError(f"{path}: no test.csv here (expected a test folder with test.csv "
                         "and its images)")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{csv_path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    table.columns = [c.strip() for c in table.columns]
    if "Index" not in table.columns:
        raise InputError(f"{csv_path}: no Index column")
    cells = table["Index"].str.strip()
    bad = [c for c in cells if not c.isdigit()]
    if bad:
        raise InputError(f"{csv_path}: Index {bad[0]!r} is not a whole number")
    if cells.duplicated().any():
        raise InputError(f"{csv_path}: duplicate Index {cells[cells.duplicated()].iloc[0]}")
    pattern = re.compile(r"^(\d+)(" + "|".join(re.escape(v) for v in views)
                         + r")(\.[A-Za-z]+)$")
    files: dict[tuple[int, str], Path] = {}
    for name in sorted(os.listdir(folder)):
        m = pattern.match(name)
        if m and m[3].lower() in suffixes and not (folder / name).is_dir():
            files.setdefault((int(m[1]), m[2]), folder / name)  # the first, as the adapter
    return [int(c) for c in cells], files


# --- prediction ---------------------------------------------------------------------------------
def study_inputs(index: int, spec: dict, files: dict, sizes: list[int], warn
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """A study's (V, S, S) uint8 views at each size, and which views are present."""
    p, views = spec["preprocess"], spec["views"]
    stacks = [np.zeros((len(views), s, s), np.uint8) for s in sizes]
    mask = np.zeros(len(views), bool)
    for j, view in enumerate(views):
        path = files.get((index, view))
        if path is None:
            continue
        try:
            image = load_grayscale(path, spec["max_image_pixels"])
            for stack, size in zip(stacks, sizes):
                stack[j] = clean_angiogram(image, p, size)
        except (InputError, ValueError) as exc:
            warn(f"{exc if isinstance(exc, InputError) else f'{path}: {exc}'}; view ignored")
            continue
        mask[j] = True
    return stacks, mask


def predict(model_dir: Path, input_dir: Path, batch_size: int = 8, threads: int = 0,
            warn=print) -> tuple[list[int], np.ndarray, np.ndarray, dict]:
    """(Index values, presence (N,), location probabilities (N, 21), the contract)."""
    spec = json.loads((model_dir / "model.json").read_text())
    if spec.get("format") != FORMAT:
        raise InputError(f"{model_dir / 'model.json'}: not an {FORMAT} export")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    sessions = [ort.InferenceSession(str(model_dir / g), options,
                                     providers=["CPUExecutionProvider"])
                for g in spec["graphs"]]
    indices, files = read_test_folder(input_dir, spec["views"], spec["image_suffixes"])
    sizes = [spec["preprocess"]["image_size"]] + ([spec["fine_size"]] if spec["fine_size"] else [])
    presence = np.zeros(len(indices))
    locations = np.zeros((len(indices), len(spec["locations"])))
    partial = []
    view_ids = np.asarray(spec["view_ids"], np.int64)
    for start in range(0, len(indices), batch_size):
        rows = indices[start:start + batch_size]
        batch = [study_inputs(i, spec, files, sizes, warn) for i in rows]
        for i, (_, mask) in zip(rows, batch):
            if not mask.any():
                raise InputError(f"{input_dir}: patient {i} has no usable view")
            if not mask.all():
                partial.append(i)
        feed = {"images": np.stack([b[0][0] for b in batch]),
                "view_ids": np.tile(view_ids, (len(rows), 1)),
                "view_mask": np.stack([b[1] for b in batch])}
        if len(sizes) > 1:
            feed["fine"] = np.stack([b[0][1] for b in batch])
        for session in sessions:
            p, loc = session.run(["presence", "locations"], feed)
            presence[start:start + len(rows)] += p / len(sessions)
            locations[start:start + len(rows)] += loc / len(sessions)
        print(f"\rpredicted {min(start + batch_size, len(indices))}/{len(indices)} patients",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    if partial:
        warn(f"{len(partial)} patient(s) predicted from fewer than {len(view_ids)} views: "
             + ", ".join(map(str, partial[:10])))
    return indices, presence, locations, spec


def output_table(indices: list[int], presence: np.ndarray, locations: np.ndarray, spec: dict,
                 binary: bool = True) -> pd.DataFrame:
    names = spec["locations"]
    if binary:
        cuts = np.array([spec["thresholds"][n] for n in names])
        locations = (locations >= cuts).astype(int)
    table = pd.DataFrame(locations, columns=names)
    table.insert(0, "Aneurysm", presence)
    table.insert(0, "Index", indices)
    return table[spec["columns"]]


def write_atomic(table: pd.DataFrame, path: Path) -> None:
    """A temporary file beside ``path``, then a rename: never a half-written output."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            table.to_csv(f, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help="test folder with test.csv")
    parser.add_argument("--output", default=Path("output.csv"), type=Path)
    parser.add_argument("--locations", choices=("binary", "prob"), default="binary")
    parser.add_argument("--model-dir", type=Path, default=Path(__file__).resolve().parent,
                        help="the export folder (default: this file's)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="0: onnxruntime's default")
    parser.add_argument("--force", action="store_true", help="overwrite OUTPUT")
    parser.add_argument("--maps", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def warn(message: str) -> None:
        print(f"predict.py: warning: {message}", file=sys.stderr)

    try:
        if args.maps:
            raise InputError("--maps needs the full aneurysm package: aneurysm predict --run "
                             "RUN --input ... --maps DIR")
        if args.output.exists() and not args.force:
            raise InputError(f"{args.output}: exists; use --force to overwrite it")
        indices, presence, locations, spec = predict(args.model_dir, args.input,
                                                     args.batch_size, args.threads, warn)
        write_atomic(output_table(indices, presence, locations, spec,
                                  args.locations == "binary"), args.output)
    except InputError as exc:
        print(f"predict.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(indices)} rows to {args.output} ({len(spec['graphs'])}-fold ensemble)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
