import subprocess
import sys

import pytest
from click.testing import CliRunner

from aneurysm.cli.main import cli
from aneurysm.registry import (
    adapter_classes,
    get_adapter,
    register_adapter,
    source_root,
)


def test_sources_lists_the_builtin_adapter():
    result = CliRunner().invoke(cli, ["sources"])
    assert result.exit_code == 0 and "kium" in result.output


def test_user_adapters_register_without_editing_the_package(tmp_path):
    @register_adapter
    class MyAdapter:
        name = "mine"
        description = "a user's own data set"
        folder_name = "mine"

        def load(self, root, split="train"):
            return []

    assert "mine" in adapter_classes()
    assert get_adapter("mine").load(tmp_path) == []
    assert source_root(get_adapter("mine"), None, tmp_path) == tmp_path / "mine"


def test_unknown_source_and_bad_config_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--source", "nope", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "unknown source 'nope'" in result.output
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preprocess:\n  image_sise: 3\n")
    result = CliRunner().invoke(cli, ["config", "--config", str(cfg)])
    assert result.exit_code == 2 and "image_sise" in result.output
    for section, key, value in (("preprocess", "polarity", "upside"),
                                ("projection", "mode", "xray")):
        cfg.write_text(f"{section}:\n  {key}: {value}\n")
        result = CliRunner().invoke(cli, ["config", "--config", str(cfg)])
        assert result.exit_code == 2 and f"got '{value}'" in result.output, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_data_root_environment_variable(kium_root, monkeypatch):
    monkeypatch.setenv("ANEURYSM_DATA", str(kium_root.parent))
    result = CliRunner().invoke(cli, ["check", "--workers", "1"])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_console_script_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "aneurysm", "check", "--root",
                           str(tmp_path / "x")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "K-ium root not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_finetune_init_with_junk_is_one_line_and_no_traceback(kium_root, tmp_path, cfg):
    (tmp_path / "junk.pt").write_text("this is no checkpoint\n")
    proc = subprocess.run([sys.executable, "-m", "aneurysm", "finetune", "--root", str(kium_root),
                           "--config", str(cfg), "--folds", "2", "--out", str(tmp_path / "run"),
                           "--init", str(tmp_path / "junk.pt")], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert "junk.pt: not a readable checkpoint" in proc.stderr.strip().splitlines()[-1]
