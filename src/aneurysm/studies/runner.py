"""Run studies: draw each seed's data, run every distinct arm once per seed, write the tables.

With ``jobs`` > 1 the runs go to that many spawned processes (a forked one would inherit
torch's thread pools and locks), each given its share of the cores; a fine-tuning starts once
its pretraining is done. Tables are rewritten after every run, so a long study can be read
while it runs, and a killed one resumes: a run whose ``result.json`` exists is kept.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

from ..errors import AneurysmError
from .draws import draw_external, draw_kium
from .jobs import execute, read_result, write_splits
from .plan import Assignment, Job, check_studies, plan
from .spec import Study, StudyError, arm_folder
from .tables import Row, write_tables

Log = Callable[[str], None]


def run_studies(studies: list[Study], out: Path, seeds: list[int] | None = None,
                jobs: int = 1, arms: list[str] | None = None, rerun: bool = False,
                device: str | None = None, config: str | None = None,
                log: Log = print) -> list[tuple[Study, list[Row]]]:
    """Run ``studies`` into ``out`` and return each study with its rows. ``arms``: only these
    (and each study's baseline); ``config``: another base config for every study."""
    out = Path(out)
    studies, assignments = prepare(studies, out, seeds, jobs, arms, device, config)
    by_dir = {j.run_dir: j for j in
              [a.job for a in assignments] + [a.pretraining for a in assignments if a.pretraining]}
    results = {d: r for d, j in by_dir.items() if not rerun and (r := read_result(j))}
    todo = [j for d, j in by_dir.items() if d not in results]
    tabled = assignments + _finished_elsewhere(studies, assignments, out, jobs, device, results)
    out.mkdir(parents=True, exist_ok=True)
    _draw(studies, {j.seed for j in todo}, out, log)
    for job in todo:
        write_splits(job)
    _link(assignments, out)
    names = _arm_names(assignments)

    def finished(job: Job, result: dict) -> None:
        results[job.run_dir] = result
        shown = ", ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items()
                          if k in ("mean val AUROC", "held-out AUROC"))
        log(f"seed {job.seed}, {job.kind} of {'; '.join(names[job.run_dir])}: {shown or 'done'}"
            f" in {result['metrics']['minutes']:.1f} min ({job.run_dir})")
        _write(studies, tabled, results, out)

    kept = len(by_dir) - len(todo)
    log(f"{len(by_dir)} runs for {len(assignments)} arm-seeds ({kept} kept from before), "
        f"{min(jobs, max(len(todo), 1))} at a time")
    _execute(todo, jobs, finished, log)
    return _write(studies, tabled, results, out)


def _finished_elsewhere(studies: list[Study], assignments: list[Assignment], out: Path,
                        jobs: int, device: str | None, results: dict[str, dict]
                        ) -> list[Assignment]:
    """The arm-seeds of seeds already in ``out`` but not asked for this time, whose runs have
    finished (their results go into ``results``): a study run one seed at a time keeps every
    seed in its tables instead of rewriting them with the last seed alone."""
    asked = {a.seed for a in assignments}
    on_disk = {int(p.name[5:]) for p in out.glob("seed_*") if p.name[5:].isdigit()} - asked
    extra = []
    for a in plan(studies, out, sorted(on_disk), _environment(jobs, device)) if on_disk else []:
        runs = [j for j in (a.job, a.pretraining) if j is not None]
        found = {j.run_dir: r for j in runs if (r := results.get(j.run_dir) or read_result(j))}
        if len(found) == len(runs):
            results.update(found)
            extra.append(a)
    return extra


def prepare(studies: list[Study], out: Path, seeds: list[int] | None = None, jobs: int = 1,
            arms: list[str] | None = None, device: str | None = None,
            config: str | None = None) -> tuple[list[Study], list[Assignment]]:
    """The studies as they will run (arms selected, base config replaced, every arm's config
    checked) and their runs; nothing is written."""
    if jobs < 1:
        raise StudyError(f"--jobs must be at least 1, got {jobs}")
    studies = select(studies, arms)
    if config:
        studies = [dataclasses.replace(s, config=str(Path(config).resolve())) for s in studies]
    check_studies(studies)
    return studies, plan(studies, Path(out), seeds, _environment(jobs, device))


def select(studies: list[Study], arms: list[str] | None) -> list[Study]:
    """Each study with only the named arms it has (and its baseline)."""
    if not arms:
        return studies
    missing = [n for n in arms if not any(n in {a.name for a in s.arms} for s in studies)]
    if missing:
        raise StudyError(f"no study has the arm(s) {missing}; arms: "
                         + "; ".join(f"{s.name}: {', '.join(a.name for a in s.arms)}"
                                     for s in studies))
    return [s.select([n for n in arms if n in {a.name for a in s.arms}]) for s in studies]


def _environment(jobs: int, device: str | None) -> dict[str, dict]:
    """Each process's share of the cores when several run at once; the device if asked."""
    env: dict[str, dict] = {"data": {}, "train": {}}
    if jobs > 1:
        share = max(1, (os.cpu_count() or 1) // jobs)
        env = {"data": {"workers": share}, "train": {"threads": share}}
    if device:
        env["train"]["device"] = device
    return env


def _draw(studies: list[Study], seeds: set[int], out: Path, log: Log) -> None:
    """Each seed's data, once: every study of one call must agree on the sizes."""
    external = {str(s.external) for s in studies}
    kium = {str(s.kium) for s in studies if s.kium is not None}
    if len(external) > 1 or len(kium) > 1:
        raise StudyError("these studies draw different data ("
                         + ", ".join(s.name for s in studies) + "); run them into different "
                         "--out folders")
    need_kium = next((s.kium for s in studies if s.kium is not None), None)
    for seed in sorted(seeds):
        root = out / f"seed_{seed}" / "data"
        log(f"seed {seed}: synthetic data in {root}")
        draw_external(root, studies[0].external, seed)
        if need_kium:
            draw_kium(root, need_kium, seed)


def _execute(todo: list[Job], jobs: int, finished: Callable[[Job, dict], None],
             log: Log) -> None:
    """Run ``todo``, pretrainings before the fine-tunings that start from them."""
    order = sorted(todo, key=lambda j: j.kind != "pretrain")
    if jobs == 1 or len(order) <= 1:
        for job in order:
            finished(job, _guarded(job, execute, job))
        return
    pending = {j.run_dir for j in order}
    waiting: list[Job] = list(order)
    running: dict[Future, Job] = {}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_like,
                               initargs=(multiprocessing.get_start_method(),))
    try:
        while waiting or running:
            for job in [j for j in waiting if j.init not in pending]:
                waiting.remove(job)
                running[pool.submit(execute, job)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                result = _guarded(job, Future.result, future)
                pending.discard(job.run_dir)
                finished(job, result)
    except BaseException:
        if running:
            log(f"waiting for {len(running)} running run(s) to finish (each keeps its result)")
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


def _start_like(method: str) -> None:
    """A spawned process starts its own processes (the cache's loader, the projection pool) as
    this one does; left at spawn, each would import torch and MONAI anew (seconds apiece)."""
    multiprocessing.set_start_method(method, force=True)


def _guarded(job: Job, run: Callable, *args) -> dict:
    try:
        return run(*args)
    except AneurysmError as exc:  # the run's own one-line error, with the run that hit it
        raise StudyError(f"seed {job.seed}, {job.kind} {job.run_dir}: {exc}") from None


def _arm_names(assignments: list[Assignment]) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for a in assignments:
        for job in (a.job, a.pretraining):
            if job is not None and a.arm not in names.setdefault(job.run_dir, []):
                names[job.run_dir].append(a.arm)
    return names


def _link(assignments: list[Assignment], out: Path) -> None:
    """OUT/seed_S/arms/ARM -> the arm's run, so a run can be found by its arm's name (the
    last study of a call wins where two name different runs alike)."""
    for a in assignments:
        link = out / f"seed_{a.seed}" / "arms" / arm_folder(a.arm)
        target = os.path.relpath(a.job.run_dir, link.parent)
        try:
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            link.symlink_to(target, target_is_directory=True)
        except OSError:  # a file system without links: the results file names every run
            pass


def _write(studies: list[Study], assignments: list[Assignment], results: dict[str, dict],
           out: Path) -> list[tuple[Study, list[Row]]]:
    found = []
    for study in studies:
        rows = [row for a in assignments if a.study == study.name
                for row in [_row(a, results)] if row is not None]
        if rows:
            write_tables(out, study, rows)
        found.append((study, rows))
    return found


def _row(a: Assignment, results: dict[str, dict]) -> Row | None:
    """One arm's numbers in one seed: its run's metrics, and its pretraining's prefixed."""
    result = results.get(a.job.run_dir)
    pre = results.get(a.pretraining.run_dir) if a.pretraining else None
    if result is None or (a.pretraining and pre is None):
        return None
    metrics = dict(result["metrics"])
    runs = {a.job.run_dir: result["metrics"]["minutes"]}
    if pre is not None:
        metrics.update({f"pretraining: {k}": v for k, v in pre["metrics"].items()
                        if k != "minutes"})
        runs[a.pretraining.run_dir] = pre["metrics"]["minutes"]
    details = (pre or result).get("details", {})
    return {"seed": a.seed, "arm": a.arm, "metrics": metrics, "runs": runs,
            "val_cases": details.get("val_cases", {})}
