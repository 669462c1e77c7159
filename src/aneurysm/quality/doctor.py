"""Run an adapter's layout checks and the image checks, and decide whether training can proceed."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from ..io.atomic import atomic_write_text
from .findings import SEVERITIES, Finding
from .image_facts import ImageFacts, examine_image, near_duplicate_pairs

#: Hamming distance (of 256 bits) under which two different files count as near-duplicates.
NEAR_DUPLICATE_BITS = 12


class Inspectable(Protocol):
    name: str

    def inspect(self, root: str | Path) -> tuple[list[Finding], dict[Path, str]]: ...


@dataclass
class DoctorReport:
    source: str
    root: str
    n_images: int
    findings: list[Finding] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(f.severity for f in self.findings)
        return {s: c.get(s, 0) for s in SEVERITIES}

    @property
    def by_code(self) -> dict[str, int]:
        return dict(sorted(Counter(f.code for f in self.findings).items()))

    def blocking(self, strict: bool = False) -> bool:
        """Training cannot proceed on errors; with ``strict`` any finding at all blocks."""
        return bool(self.findings) if strict else self.counts["error"] > 0

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "root": self.root,
            "images": self.n_images,
            "counts": self.counts,
            "by_code": self.by_code,
            "image_sizes": {f"{w}x{h}": n for (w, h), n in self.sizes.most_common()},
            "channels": {str(k): v for k, v in sorted(self.channels.items())},
            "findings": [f.to_json() for f in self.findings],
        }

    def write_json(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=1))


def _examine_all(paths: list[Path], workers: int | None, progress: bool) -> list[ImageFacts]:
    names = [str(p) for p in paths]
    bar = dict(total=len(names), desc="examine images", unit="img", disable=not progress)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(names) < 16:
        return [examine_image(p) for p in tqdm(names, **bar)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(examine_image, names, chunksize=16), **bar))


def image_findings(facts: list[ImageFacts], patients: list[str]) -> list[Finding]:
    """Unreadable files, overlays, and duplicates by content.

    Near-duplicates within one patient are expected (left and right vertebral injections fill
    the same posterior circulation), so only those across patients, or of stray files, count.
    """
    out: list[Finding] = []
    for f in facts:
        if f.error:
            out.append(Finding("unreadable_image", "error", f.path, f.error))
            continue
        if f.blank:
            out.append(Finding("blank_image", "warning", f.path,
                               "a blank frame: one grey level throughout, no anatomy"))
            continue
        if f.inverted:
            out.append(Finding("inverted_polarity", "warning", f.path,
                               "bright vessels on a dark field, unlike DSA; preprocessing inverts "
                               "it (preprocess.polarity)"))
        if f.capped:
            t, b, l, r = f.border
            out.append(Finding("border_band_over_bound", "warning", f.path,
                               f"dark bands (top {t}, bottom {b}, left {l}, right {r} px) would "
                               f"remove {f.removed:.0%} of the image; preprocessing crops each "
                               "to its bound (preprocess.max_band_fraction)"))
        elif any(f.border):
            t, b, l, r = f.border
            out.append(Finding("border_band", "info", f.path,
                               f"dark border band (top {t}, bottom {b}, left {l}, right {r} px, "
                               f"{f.removed:.0%} of the image); preprocessing crops it"))
        if f.text_pixels:
            out.append(Finding("overlay_text", "info", f.path,
                               f"{f.text_pixels} px of burned-in overlay text; preprocessing "
                               "erases it"))
    by_hash: dict[str, list[tuple[bool, str]]] = defaultdict(list)
    for f, patient in zip(facts, patients):
        if f.sha256 and not f.error:
            by_hash[f.sha256].append((not patient, f.path))  # a patient's own file comes first
    for group in by_hash.values():
        if len(group) < 2:
            continue
        paths = [p for _, p in sorted(group)]
        for dup in paths[1:]:
            out.append(Finding("duplicate_image", "warning", dup,
                               f"identical content to {Path(paths[0]).name}"))
    for i, j, dist in near_duplicate_pairs(facts, NEAR_DUPLICATE_BITS):
        if facts[i].sha256 == facts[j].sha256 or (patients[i] and patients[i] == patients[j]):
            continue
        a, b = sorted((facts[i].path, facts[j].path))
        out.append(Finding("near_duplicate_image", "warning", b,
                           f"near-duplicate of {Path(a).name} (perceptual hash differs in "
                           f"{dist} of 256 bits)"))
    return out


def run_doctor(adapter: Inspectable, root: str | Path, workers: int | None = None,
               progress: bool = True) -> DoctorReport:
    """Every finding about a source folder; raises DataError only when the root is unusable."""
    layout, image_patients = adapter.inspect(root)
    images = list(image_patients)
    facts = _examine_all(images, workers, progress)
    report = DoctorReport(adapter.name, str(root), len(images))
    order = {s: i for i, s in enumerate(SEVERITIES)}
    report.findings = sorted(layout + image_findings(facts, list(image_patients.values())),
                             key=lambda f: (order[f.severity], f.code, f.path))
    for f in facts:
        if not f.error:
            report.sizes[(f.width, f.height)] += 1
            report.channels[f.channels] += 1
    return report
