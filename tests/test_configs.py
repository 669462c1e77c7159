from pathlib import Path

import dataclasses

from aneurysm.config import ExperimentConfig, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_cpu_preset_documents_the_builtin_defaults():
    cpu = load_config(CONFIGS / "cpu.yaml")
    default = ExperimentConfig()
    assert dataclasses.replace(cpu, data=default.data) == default


def test_gpu_preset_is_realistic_for_real_data():
    gpu = load_config(CONFIGS / "gpu.yaml")
    assert gpu.preprocess.image_size >= 512
    assert gpu.model.head == "dense" and gpu.model.width >= 32
    assert gpu.train.precision == "bf16" and gpu.train.device == "cuda"


def test_every_config_in_the_folder_loads():
    for path in CONFIGS.glob("*.yaml"):
        load_config(path)
