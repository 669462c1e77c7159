"""Run tracking (``train.track``, ``--track``): every epoch's figures, the config and the final
figures, to TensorBoard or MLflow as well as ``history.csv``.

Optional extras, off by default: ``pip install 'aneurysm[tensorboard]'`` or
``'aneurysm[mlflow]'``. Both write inside the run folder (``tensorboard/``, ``mlflow.db``), so
nothing needs a server: ``tensorboard --logdir RUN`` or ``mlflow ui --backend-store-uri
sqlite:///RUN/mlflow.db``. A resumed run goes on logging into the same store.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Protocol

from ..io.atomic import atomic_write_text

#: the epoch's step; every other field of a history row is logged as a figure
STEP = "epoch"
MLFLOW_RUN = "tracking.json"  # the MLflow run id, so a resumed run logs into the same run


class Tracker(Protocol):
    def log_config(self, config: dict) -> None: ...

    def log_epoch(self, prefix: str, row: dict) -> None: ...

    def log_final(self, figures: dict[str, float]) -> None: ...

    def close(self) -> None: ...


def _flat(values: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, (list, tuple)) \
                else str(value)
    return out


def _missing(extra: str, exc: ImportError):
    from ..errors import ConfigError

    return ConfigError(f"--track {extra} needs the {extra} extra ({exc.name} is not "
                       f"installed): pip install 'aneurysm[{extra}]'")


class TensorBoardTracker:
    """Event files in ``RUN/tensorboard``: a scalar per figure, the config as text."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise _missing("tensorboard", exc) from None
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log_config(self, config: dict) -> None:
        import yaml

        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False)
                             + "```")

    def log_epoch(self, prefix: str, row: dict) -> None:
        for key, value in row.items():
            if key != STEP:
                self.writer.add_scalar(f"{prefix}/{key}", float(value), int(row[STEP]))
        self.writer.flush()

    def log_final(self, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            self.writer.add_scalar(f"final/{key}", float(value), 0)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MlflowTracker:
    """An MLflow run in the SQLite store ``RUN/mlflow.db`` (experiment ``aneurysm``): metrics
    per step, the config as parameters."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise _missing("mlflow", exc) from None
        self.client = MlflowClient(tracking_uri=f"sqlite:///{(run_dir / 'mlflow.db').resolve()}")
        marker = run_dir / MLFLOW_RUN
        if marker.is_file():
            self.run_id = json.loads(marker.read_text())["mlflow_run_id"]
        else:
            found = self.client.get_experiment_by_name("aneurysm")
            experiment = found.experiment_id if found else self.client.create_experiment(
                "aneurysm")
            self.run_id = self.client.create_run(experiment,
                                                 run_name=run_dir.resolve().name).info.run_id
            atomic_write_text(marker, json.dumps({"mlflow_run_id": self.run_id}))

    def log_config(self, config: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k, v[:500]) for k, v in _flat(config).items()]
        existing = self.client.get_run(self.run_id).data.params
        params = [p for p in params if p.key not in existing]  # resumed: already logged
        for start in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def _metrics(self, figures: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(k, float(v), now, step) for k, v in figures.items()])

    def log_epoch(self, prefix: str, row: dict) -> None:
        self._metrics({f"{prefix}/{k}": v for k, v in row.items() if k != STEP}, int(row[STEP]))

    def log_final(self, figures: dict[str, float]) -> None:
        self._metrics({f"final/{k}": v for k, v in figures.items()}, 0)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


#: ``train.track`` name -> tracker(run folder)
TRACKERS: dict[str, Callable[[Path], Tracker]] = {
    "tensorboard": TensorBoardTracker, "mlflow": MlflowTracker}


class Trackers:
    """Every tracker a run asked for, as one; none at all is a valid, silent set."""

    def __init__(self, names: tuple[str, ...], run_dir: str | Path, config: dict) -> None:
        self.trackers = [TRACKERS[name](Path(run_dir)) for name in names]
        for t in self.trackers:
            t.log_config(config)

    def log_epoch(self, prefix: str, row: dict) -> None:
        for t in self.trackers:
            t.log_epoch(prefix, row)

    def log_final(self, figures: dict[str, float]) -> None:
        figures = {k: v for k, v in figures.items() if not math.isnan(v)}
        for t in self.trackers:
            t.log_final(figures)

    def close(self) -> None:
        for t in self.trackers:
            t.close()
