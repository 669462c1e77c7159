"""Checkpoints that carry their contract, and strict loading with readable mismatch errors.

nnU-Net's lesson: every key except the heads must exist with the same shape; DDP's ``module.``
and torch.compile's ``_orig_mod.`` prefixes are stripped; a mismatch lists what differs instead
of dumping shapes.

Weights are safetensors files (``best.safetensors``, ``last.safetensors``,
``pretrained.safetensors``): the format Hugging Face, timm and MONAI's newer bundles use, read
without any code running, memory-mappable, and readable outside torch. The metadata (the
architecture, image size, labels, config hash, versions) is JSON in the file's header. What
only ``--resume`` needs (optimiser, scheduler and loss-scaler state, the history so far) stays
in a torch file beside it (``last.state.pt``, read with ``weights_only``): it is nested
containers of tensors and numbers, which safetensors' flat name -> tensor map does not hold,
and nobody outside this package needs it. Runs written before hold ``.pt`` files; they still
load, with ``weights_only=True``.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from ..errors import AneurysmError
from ..io.atomic import atomic_path
from .config import ModelConfig
from .registry import build_model

HEAD_PREFIX = "heads."
_PREFIXES = ("module.", "_orig_mod.")
WEIGHTS = ".safetensors"
#: beside ``last.safetensors``: what ``--resume`` needs besides the weights
STATE_SUFFIX = ".state.pt"
_HEADER_KEY = "aneurysm"


def checkpoint_path(folder: str | Path, stem: str) -> Path:
    """``folder/stem.safetensors``; an older run's ``folder/stem.pt`` where only that exists."""
    folder = Path(folder)
    new, old = folder / f"{stem}{WEIGHTS}", folder / f"{stem}.pt"
    return old if old.is_file() and not new.is_file() else new


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def save_checkpoint(path: str | Path, model: nn.Module, metadata: dict[str, Any],
                    **extra: Any) -> Path:
    """Write atomically: a killed process never leaves a half-written checkpoint."""
    model = getattr(model, "module", model)
    path = Path(path)
    state = strip_prefixes(model.state_dict())
    try:
        if path.suffix == WEIGHTS:
            from safetensors.torch import save_file

            # own, contiguous CPU copies: safetensors refuses tensors that share memory
            tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}
            header = {_HEADER_KEY: json.dumps(metadata, default=str)}
            if extra:  # the resume state first: a weights file never points at a missing one
                with atomic_path(path.with_suffix(STATE_SUFFIX)) as tmp:
                    torch.save(extra, tmp)
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata=header)
        else:
            with atomic_path(path) as tmp:
                torch.save({"state_dict": state, "metadata": metadata, **extra}, tmp)
    except (RuntimeError, OSError) as exc:  # a short write (a full disk) and the like
        raise AneurysmError(f"{path}: could not write the checkpoint "
                            f"({str(exc).splitlines()[0][:120]})") from None
    return path


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path))
        metadata = json.loads(header.get(_HEADER_KEY, "{}"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise AneurysmError(f"{path}: not a readable checkpoint "
                            f"(safetensors: {exc.__class__.__name__})") from None
    payload: dict[str, Any] = {"state_dict": state, "metadata": metadata}
    extra = path.with_suffix(STATE_SUFFIX)
    if extra.is_file():
        payload.update(_torch_load(extra))
    return payload


def _torch_load(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):  # junk, not a pickle of foreign objects
            raise AneurysmError(f"{path}: not a readable checkpoint (UnpicklingError)") from None
        raise AneurysmError(
            f"{path}: refused: loading it needs pickle to build objects other than tensors, "
            "which could run code; this project's checkpoints never do. Re-save its state_dict "
            "and metadata as plain tensors, lists and numbers where you trust the file"
        ) from None
    except Exception as exc:  # a truncated or foreign file
        raise AneurysmError(f"{path}: not a readable checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(payload, dict):
        raise AneurysmError(f"{path}: not an aneurysm checkpoint (not a mapping)")
    return payload


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load without running code: safetensors holds tensors and a JSON header only, and an
    older ``.pt`` file goes through ``weights_only``, which unpickles tensors, containers and
    numbers only, so a checkpoint handed over by someone else cannot execute anything."""
    path = Path(path)
    if not path.is_file():
        raise AneurysmError(f"{path}: checkpoint not found")
    payload = _read_safetensors(path) if path.suffix == WEIGHTS else _torch_load(path)
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise AneurysmError(f"{path}: not an aneurysm checkpoint (no state_dict of tensors)")
    if not isinstance(payload.get("metadata", {}), dict):
        raise AneurysmError(f"{path}: not an aneurysm checkpoint (metadata is not a mapping)")
    payload["state_dict"] = strip_prefixes(state)
    return payload


def load_model(path: str | Path, config: ModelConfig,
               device: torch.device | str = "cpu") -> nn.Module:
    """The model a run saved, built from the run's own model config and loaded strictly: every
    key and shape must match, or one line says what differs (a config edited after training,
    a checkpoint from another run)."""
    model = build_model(config)
    source = read_checkpoint(path)["state_dict"]
    differences = _differences(source, model.state_dict(), lambda key: True)
    if differences:
        raise AneurysmError(f"{path}: does not fit the run's model config: {differences}")
    model.load_state_dict(source)
    return model.to(device).eval()


def _differences(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                 compared: Callable[[str], bool]) -> str:
    """Missing, unexpected and reshaped keys among those ``compared`` says to compare, as one
    line ('' when they all match)."""
    found = {
        "missing": [k for k in target if compared(k) and k not in source],
        "unexpected": [k for k in source if compared(k) and k not in target],
        "shape differs": [f"{k} {tuple(source[k].shape)} vs {tuple(target[k].shape)}"
                          for k in target if compared(k) and k in source
                          and source[k].shape != target[k].shape]}
    return "; ".join(f"{label} ({len(keys)}): {', '.join(keys[:4])}"
                     + (" ..." if len(keys) > 4 else "") for label, keys in found.items() if keys)


def _current(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata in today's words: checkpoints written before the model registry named the
    model ``head`` in their architecture."""
    arch = meta.get("model")
    if isinstance(arch, dict) and "head" in arch and "model" not in arch:
        arch = {"model": arch["head"], **{k: v for k, v in arch.items() if k != "head"}}
        meta = {**meta, "model": arch}
    return meta


def load_init(model: nn.Module, path: str | Path, expect: dict[str, Any]) -> list[str]:
    """Load a pretrained body into ``model``; heads may differ. Returns the head keys skipped."""
    payload = read_checkpoint(path)
    meta = _current(payload.get("metadata", {}))
    differences = [f"{k}: checkpoint has {meta.get(k)!r}, this run uses {v!r}"
                   for k, v in expect.items() if k in meta and meta.get(k) != v]
    if differences:
        raise AneurysmError(f"{path}: checkpoint does not fit this run: " + "; ".join(differences))
    source = payload["state_dict"]
    target = model.state_dict()
    differences = _differences(source, target, lambda key: not key.startswith(HEAD_PREFIX))
    if differences:
        raise AneurysmError(f"{path}: backbone/fusion do not match this model: {differences}")
    skipped = [k for k in target if k.startswith(HEAD_PREFIX)
               and (k not in source or source[k].shape != target[k].shape)]
    state = {k: v for k, v in source.items() if k in target and k not in skipped}
    model.load_state_dict(state, strict=False)
    return skipped
