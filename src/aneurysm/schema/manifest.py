"""Save and load lists of study records (manifests) as JSON, refusing a different label space."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..errors import DataError
from ..io.atomic import atomic_write_text
from .locations import LOCATION_NAMES
from .records import GroupLabel, StudyRecord, ViewImage, VolumeRef

FORMAT = "aneurysm-manifest"
VERSION = 1


def _record_to_json(r: StudyRecord) -> dict:
    return {
        "study_id": r.study_id,
        "patient_id": r.patient_id,
        "source": r.source,
        "modality": r.modality,
        "split": r.split,
        "views": [[v.view, v.path] for v in r.views],
        "presence": r.presence,
        "locations": list(r.locations),
        "location_known": [int(k) for k in r.location_known],
        "groups": [{"members": list(g.members), "positive": g.positive} for g in r.groups],
        "attributes": dict(r.attributes),
        "volume": None if r.volume is None else {
            "kind": r.volume.kind, "path": r.volume.path,
            "lesion_masks": list(r.volume.lesion_masks),
            "ignore_labels": list(r.volume.ignore_labels),
            "points": [list(p) for p in r.volume.points],
            "localizers": [list(p) for p in r.volume.localizers],
            "arteries": r.volume.arteries,
            "artery_labels": [list(a) for a in r.volume.artery_labels],
        },
    }


def _record_from_json(d: dict) -> StudyRecord:
    return StudyRecord(
        study_id=str(d["study_id"]),
        patient_id=str(d["patient_id"]),
        source=d["source"],
        modality=d["modality"],
        split=d.get("split", "train"),
        views=tuple(ViewImage(v, p) for v, p in d["views"]),
        presence=d["presence"],
        locations=tuple(int(v) for v in d["locations"]),
        location_known=tuple(bool(k) for k in d["location_known"]),
        groups=tuple(GroupLabel(tuple(g["members"]), bool(g["positive"])) for g in d["groups"]),
        attributes=tuple(sorted((str(k), str(v)) for k, v in d.get("attributes", {}).items())),
        volume=_volume_from_json(d.get("volume")),
    )


def _volume_from_json(v: dict | None) -> VolumeRef | None:
    if v is None:
        return None
    return VolumeRef(
        kind=v["kind"], path=v["path"], lesion_masks=tuple(v["lesion_masks"]),
        ignore_labels=tuple(int(x) for x in v["ignore_labels"]),
        points=tuple(tuple(float(c) for c in p) for p in v["points"]),
        localizers=tuple((str(s), float(x), float(y), int(f)) for s, x, y, f in v["localizers"]),
        arteries=v.get("arteries", ""),
        artery_labels=tuple((int(k), str(a), str(t)) for k, a, t in v.get("artery_labels", [])),
    )


def save_manifest(records: Iterable[StudyRecord], path: str | Path) -> Path:
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "locations": list(LOCATION_NAMES),
        "records": [_record_to_json(r) for r in records],
    }
    atomic_write_text(path, json.dumps(payload, indent=1))
    return path


def load_manifest(path: str | Path) -> list[StudyRecord]:
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "manifest not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not a readable manifest ({exc})") from None
    if payload.get("format") != FORMAT:
        raise DataError(path, f"not an {FORMAT} file")
    if payload.get("locations") != list(LOCATION_NAMES):
        raise DataError(path, "manifest uses a different location list; relabel it first")
    try:
        return [_record_from_json(d) for d in payload["records"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(path, f"malformed record ({exc})") from None
