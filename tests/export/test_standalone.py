"""The exported predictor repeats the package's image cleaning and test-folder reading without
it (no scipy, no torch): held here to the same output, file by file."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from aneurysm.config import load_config
from aneurysm.io.images import load_grayscale
from aneurysm.preprocessing import PreprocessConfig, clean_angiogram
from aneurysm.schema import KIUM_VIEW_NAMES
from aneurysm.workflows.export import export_run  # noqa: F401  (the module under test ships it)

STANDALONE = Path(__file__).parents[2] / "src" / "aneurysm" / "export" / "standalone.py"


@pytest.fixture(scope="module")
def standalone():
    spec = importlib.util.spec_from_file_location("standalone_predict", STANDALONE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _angiogram(rng, h, w, inverted=False):
    """A DSA-like frame: light field, dark vessels, black bands, white overlay text."""
    image = np.full((h, w), 200, np.uint8) + rng.integers(0, 12, (h, w)).astype(np.uint8)
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    for _ in range(6):
        draw.line([tuple(rng.integers(0, (w, h))) for _ in range(2)], fill=60, width=3)
    draw.rectangle([0, 0, w, h // 10], fill=0)
    draw.rectangle([0, 0, w // 12, h], fill=0)
    draw.text((w // 3, 2), "L 12 mAs 85 kV", fill=255)
    draw.text((w // 2, h // 2), "R", fill=252)
    image = np.asarray(pil)
    return 255 - image if inverted else image


def _cases(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for name, (h, w), inverted, mode in (("square.jpg", (300, 300), False, "L"),
                                         ("wide.png", (180, 260), False, "L"),
                                         ("tall_inverted.jpg", (250, 170), True, "L"),
                                         ("colour.jpg", (220, 220), False, "RGB"),
                                         ("deep.png", (200, 240), False, "I;16")):
        image = _angiogram(rng, h, w, inverted)
        pil = Image.fromarray(image)
        if mode == "RGB":
            pil = pil.convert("RGB")
        if mode == "I;16":
            pil = Image.fromarray(image.astype(np.uint16) * 257)
        pil.save(tmp_path / name)
        paths.append(tmp_path / name)
    return paths


@pytest.mark.parametrize("settings", [
    {}, {"image_size": 96}, {"remove_text": False, "image_size": 64},
    {"remove_border": False}, {"polarity": "keep"}, {"max_band_fraction": 0.05}])
def test_image_cleaning_matches_the_package_pixel_for_pixel(standalone, tmp_path, settings):
    config = PreprocessConfig(**{"image_size": 128, **settings})
    p = {k: getattr(config, k) for k in ("polarity", "remove_border", "remove_text",
                                         "border_dark_level", "text_bright_level",
                                         "max_band_fraction")}
    for path in _cases(tmp_path):
        ours = clean_angiogram(load_grayscale(path), config)
        theirs = standalone.clean_angiogram(standalone.load_grayscale(path, 64_000_000), p,
                                            config.image_size)
        assert theirs.dtype == np.uint8 and np.array_equal(ours, theirs), path.name


def test_test_folder_is_read_as_the_adapter_reads_it(standalone, kium_root):
    from aneurysm.registry import get_adapter

    folder = kium_root / "test_set"
    first = sorted(folder.glob("*LI-A.jpg"))[0]
    index = first.name[:-len("LI-A.jpg")]
    first.rename(folder / f"00{index}LI-A.jpg")  # zero-padded, as some exports name them
    (folder / f"{index}RV-B.jpg").unlink()
    (folder / "notes.txt").write_text("not an image")
    records = get_adapter("kium").load_set(folder, "test")
    indices, files = standalone.read_test_folder(folder, list(KIUM_VIEW_NAMES),
                                                 [".jpg", ".jpeg", ".png"])
    assert indices == [int(r.study_id) for r in records]
    for r in records:
        for v in r.views:
            got = files.get((int(r.study_id), v.view))
            assert (str(got) if got else None) == v.path


def test_bad_input_is_one_line_naming_the_file(standalone, kium_root, tmp_path, capsys):
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.json").write_text(json.dumps({"format": "something-else"}))
    assert standalone.main(["--input", str(kium_root / "test_set"), "--output",
                            str(tmp_path / "o.csv"), "--model-dir", str(export)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.json" in err[0] and "not an aneurysm-onnx/1" in err[0]
    (export / "model.json").write_text(json.dumps({
        "format": standalone.FORMAT, "graphs": [], "views": list(KIUM_VIEW_NAMES),
        "image_suffixes": [".jpg"], "preprocess": {"image_size": 32}, "fine_size": 0}))
    csv = kium_root / "test_set" / "test.csv"
    csv.write_text("Index,Aneurysm\n12a,0\n")
    assert standalone.main(["--input", str(kium_root / "test_set"), "--output",
                            str(tmp_path / "o.csv"), "--model-dir", str(export)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(csv) in err[0] and "'12a' is not a whole number" in err[0]
    assert not (tmp_path / "o.csv").exists()


SECOND_LOOK = {"preprocess": {"image_size": 32, "fine_size": 64},
               "model": {"embed_dim": 16, "dense": {"crops": 2, "crop_size": 16,
                                                    "crop_width": 8}}}
GLOBAL = {"preprocess": {"image_size": 32}, "model": {"name": "global", "embed_dim": 16}}


@pytest.mark.slow
@pytest.mark.parametrize("settings", [SECOND_LOOK, GLOBAL], ids=["second look", "global"])
def test_every_model_exports_with_a_free_batch_and_agrees_with_torch(tmp_path, settings):
    """The second look (peak picking, crop sampling) and the timm backbone trace as well."""
    import onnxruntime as ort

    from aneurysm.export.graph import ExportedFold, example_inputs, export_fold
    from aneurysm.model import build_model

    config = load_config(None, settings)
    torch.manual_seed(0)
    model = build_model(config.model).eval()
    fine = config.preprocess.fine_size if config.model.second_look else 0
    if fine:
        for p in model.second_look.parameters():  # its heads start at zero: give them a say
            p.data.normal_(0, 0.1)
    path = tmp_path / "fold.onnx"
    names = export_fold(model, path, 8, 32, fine, tta=True)
    assert names == ["images", "view_ids", "view_mask", "fine"][:4 if fine else 3]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = list(example_inputs(8, 32, fine, batch=3))  # traced with 2
    inputs[2][0, :5] = False  # a study with three views
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    with torch.no_grad():
        want = ExportedFold(model, True)(*inputs)
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape) and np.abs(g - w.numpy()).max() < 1e-5
