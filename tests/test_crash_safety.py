"""A full disk, simulated with a file-size limit on a real subprocess: a clear line, a non-zero
exit, and the earlier result untouched (no half-written file, no temporary left behind)."""

import hashlib
import subprocess
import sys

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
