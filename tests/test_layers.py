"""The package's import structure: the layer contract of pyproject.toml holds (CI also runs
``lint-imports``), no two modules import each other, and ``inference`` imports nothing of
``training`` (what both need lives below them)."""

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("aneurysm", cache_dir=None)


def test_the_layer_contract_is_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "0 broken" in done.stdout and "Layers follow the data flow KEPT" in done.stdout


def test_no_two_modules_import_each_other(graph):
    pairs = {tuple(sorted((m, i))) for m in graph.modules
             for i in graph.find_modules_directly_imported_by(m)
             if m in graph.find_modules_directly_imported_by(i)}
    assert not pairs


def test_inference_imports_nothing_from_training(graph):
    inference = [m for m in graph.modules if m.startswith("aneurysm.inference")]
    reached = {i for m in inference for i in graph.find_modules_directly_imported_by(m)}
    assert inference and not [i for i in reached if i.startswith("aneurysm.training")]
