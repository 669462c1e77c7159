"""A full disk, simulated with a file-size limit on a real subprocess: a clear line, a non-zero
exit, and the earlier result untouched (no half-written file, no temporary left behind)."""

import hashlib
import os
import random
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("resource")

_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv = ["aneurysm"] + sys.argv[2:]
from aneurysm.cli.main import main
main()
"""


pytestmark = pytest.mark.slow  # real subprocesses killed and rerun


def _digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _synth(out, *extra, limit=None):
    args = ["synth", "kium", str(out), "--patients", "3", "--test", "1", "--image-size", "96",
            "--workers", "1", *extra]
    cmd = ([sys.executable, "-c", _LIMITED, str(limit)] if limit else
           [sys.executable, "-m", "aneurysm"]) + args
    return subprocess.run(cmd, capture_output=True, text=True)


def test_a_full_disk_is_one_line_and_keeps_the_earlier_result(tmp_path):
    out = tmp_path / "kium"
    assert _synth(out).returncode == 0
    before = _digest(out)
    proc = _synth(out, "--seed", "5", "--force", limit=2000)  # a JPEG is larger than that
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "File too large" in last and ".jpg" in last
    assert _digest(out) == before  # nothing of the earlier root changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kium"]  # no temporary left


def _killed(args, delay, env):
    """Start ``aneurysm ARGS`` in its own process group and SIGKILL the group after ``delay``
    seconds (if it is still running): a power cut, the OOM killer, a cancelled job."""
    proc = subprocess.Popen([sys.executable, "-m", "aneurysm", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True
    assert proc.returncode == 0, proc.stderr.read().decode()[-1500:]
    return False


def _finish(args, env) -> float:
    """Run to completion; return the wall time, from which the kill times are drawn."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "aneurysm", *args], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    return time.monotonic() - start


def _resume(run) -> list[str]:
    return ["--resume"] if (run / "config.yaml").exists() else []


KILLS = 3  # per stage: each costs a process start (~3 s of imports), and the suite has 10 min


def test_killed_at_random_points_the_rerun_finishes_whole(kium_master, external_master,
                                                          tmp_path, cfg):
    """Seeded SIGKILLs during preprocessing, projection with pretraining, and fine-tuning (3
    each, at random fractions of an uninterrupted run's time); every rerun neither crashes
    nor reuses a partial file, and the fine-tuning resumed through 3 kills ends exactly where
    an uninterrupted run does."""
    import numpy as np

    from aneurysm.preprocessing import ImageCache, PreprocessConfig

    rng = random.Random(0)
    clean = {**os.environ, "ANEURYSM_CACHE": str(tmp_path / "clean")}
    env = {**os.environ, "ANEURYSM_CACHE": str(tmp_path / "cache")}
    kills = 0
    pre = ["preprocess", "--root", str(kium_master), "--image-size", "40"]
    whole = _finish(pre, clean)
    for _ in range(KILLS):
        kills += _killed(pre, rng.uniform(0.15, 0.6) * whole, env)
    _finish(pre, env)
    killed_cache = ImageCache(tmp_path / "cache", PreprocessConfig(image_size=40))
    clean_cache = ImageCache(tmp_path / "clean", PreprocessConfig(image_size=40))
    for path in sorted((kium_master / "train_set").glob("*.jpg")):
        assert np.array_equal(killed_cache.load(path), clean_cache.load(path))

    def pretrain(out):
        return ["pretrain", "--data-root", str(external_master), "--config", str(cfg),
                "--out", str(out)]

    whole = _finish(pretrain(tmp_path / "pre_whole"), clean)
    out = tmp_path / "pre"
    for _ in range(KILLS):
        kills += _killed(pretrain(out) + _resume(out), rng.uniform(0.15, 0.6) * whole, env)
    _finish(pretrain(out) + _resume(out), env)
    assert (out / "pretrained.safetensors").is_file()

    def finetune(run):
        return ["finetune", "--root", str(kium_master), "--config", str(cfg), "--folds", "2",
                "--out", str(run), "--init", str(out / "pretrained.safetensors")]

    whole = _finish(finetune(tmp_path / "whole"), env)
    run = tmp_path / "killed"
    for _ in range(KILLS):
        kills += _killed(finetune(run) + _resume(run), rng.uniform(0.15, 0.6) * whole, env)
    _finish(finetune(run) + _resume(run), env)
    assert (run / "oof.csv").read_text() == (tmp_path / "whole" / "oof.csv").read_text()
    print(f"kills landed: {kills} of {3 * KILLS}")
    # a draw lands after its run ended only if a rerun is faster
    assert kills >= 3 * KILLS - 3, kills


def test_two_processes_preparing_one_cache_at_once(kium_master, external_master, tmp_path, cfg):
    """Two torchrun ranks, or two users, warming the same cache together: both succeed, and the
    cache serves what a single process would have made."""
    import numpy as np

    from aneurysm.preprocessing import ImageCache, PreprocessConfig

    env = {**os.environ, "ANEURYSM_CACHE": str(tmp_path / "cache")}
    jobs = [["preprocess", "--root", str(kium_master), "--image-size", "40"],
            ["sources", "--data-root", str(external_master), "--preview",
             str(tmp_path / "p1.png")]]
    for args in jobs:
        procs = [subprocess.Popen([sys.executable, "-m", "aneurysm", *args[:-1],
                                   args[-1].replace("p1", f"p{k}")], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for k in range(2)]
        for p in procs:
            assert p.wait() == 0, p.stderr.read().decode()[-1500:]
    shared = ImageCache(tmp_path / "cache", PreprocessConfig(image_size=40))
    alone = ImageCache(tmp_path / "alone", PreprocessConfig(image_size=40))
    for path in sorted((kium_master / "train_set").glob("*.jpg")):
        assert np.array_equal(shared.load(path), alone.load(path))
    projections = [p for p in (tmp_path / "cache" / "projections").rglob("positions.json")]
    assert projections and not list((tmp_path / "cache" / "projections").rglob(".proj.*"))
