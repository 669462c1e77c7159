import hashlib

import numpy as np
import pandas as pd
import pytest

from aneurysm.errors import AneurysmError
from aneurysm.io.images import image_channels, load_grayscale
from aneurysm.schema import KIUM_COLUMNS, KIUM_VIEW_NAMES, LOCATION_NAMES
from aneurysm.synth.anatomy import add_aneurysms, sample_anatomy
from aneurysm.synth.cohort import PREVALENCE, sample_cohort_labels
from aneurysm.schema.sizes import SIZES_FILE, largest_radius
from aneurysm.synth.kium import SynthConfig, save_preview, write_kium


def test_layout_columns_and_labels_consistent(kium_master):
    train = pd.read_csv(kium_master / "train_set" / "train.csv")
    test = pd.read_csv(kium_master / "test_set" / "test.csv")
    truth = pd.read_csv(kium_master / "groundtruth.csv")
    assert list(train.columns) == list(KIUM_COLUMNS) == list(test.columns)
    assert len(train) == 10 and len(test) == 5
    assert (train["Aneurysm"] == train[list(LOCATION_NAMES)].max(axis=1)).all()
    assert (test.iloc[:, 1:] == 0).all().all()  # labels zeroed in test_set
    assert list(truth["Index"]) == list(test["Index"])
    assert not (kium_master / "test_set" / "groundtruth.csv").exists()
    assert train["Index"].iloc[0] == 1001 and set(train["Index"]).isdisjoint(test["Index"])
    for idx in train["Index"]:
        for view in KIUM_VIEW_NAMES:
            assert (kium_master / "train_set" / f"{idx}{view}.jpg").is_file()


def test_every_aneurysm_has_its_size_and_the_largest_is_read_per_patient(kium_master):
    sizes = pd.read_csv(kium_master / SIZES_FILE)
    train = pd.read_csv(kium_master / "train_set" / "train.csv").set_index("Index")
    truth = pd.read_csv(kium_master / "groundtruth.csv").set_index("Index")
    labels = pd.concat([train, truth])
    for index, location, radius in zip(sizes["Index"], sizes["location"], sizes["radius_mm"]):
        assert labels.loc[index, location] == 1 and 1.0 <= radius <= 7.0
    per_patient = sizes.groupby("Index")["location"].apply(set)
    for index, row in labels.iterrows():
        named = {n for n in LOCATION_NAMES if row[n] == 1}
        assert named == per_patient.get(index, set())
    radius = largest_radius(kium_master / SIZES_FILE, labels.index)
    positive = labels["Aneurysm"].to_numpy() == 1
    assert np.isnan(radius[~positive]).all() and not np.isnan(radius[positive]).any()
    first = sizes["Index"].iloc[0]
    assert radius[list(labels.index).index(first)] == sizes[sizes.Index == first].radius_mm.max()


def test_images_look_like_dsa(kium_master):
    img = load_grayscale(kium_master / "train_set" / "1001LI-A.jpg")
    assert img.shape == (96, 96)
    background = np.median(img)
    assert 180 <= background <= 225  # light grey
    assert img.min() < background - 60  # dark vessels


def test_every_labelled_aneurysm_is_drawn_in_some_view(kium_master):
    train = pd.read_csv(kium_master / "train_set" / "train.csv")
    marks = pd.read_csv(kium_master / "aneurysm_positions.csv")
    for row in train.itertuples(index=False):
        labelled = {loc for loc in LOCATION_NAMES if getattr(row, loc) == 1}
        drawn = set(marks[(marks["Index"] == row.Index) & (marks["set"] == "train_set")]
                    ["location"])
        assert drawn == labelled


def test_same_seed_same_bytes_and_existing_output_refused(tmp_path):
    cfg = SynthConfig(patients=2, test=1, seed=11, image_size=64)
    a = write_kium(tmp_path / "a", cfg, workers=1, progress=False)
    b = write_kium(tmp_path / "b", cfg, workers=1, progress=False)

    def digest(root):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    assert digest(a) == digest(b)
    with pytest.raises(AneurysmError, match="--force"):
        write_kium(a, cfg, workers=1, progress=False)
    write_kium(a, SynthConfig(patients=1, test=0, seed=1, image_size=64), force=True, workers=1,
               progress=False)
    assert len(pd.read_csv(a / "train_set" / "train.csv")) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


@pytest.mark.slow
def test_messy_mode_reproduces_the_real_mess(tmp_path):
    root = write_kium(tmp_path / "m", SynthConfig(patients=3, test=0, seed=5, messy=True),
                      workers=2, progress=False)
    files = sorted((root / "train_set").glob("*.jpg"))
    assert any(p.name.endswith(" (1).jpg") for p in files)  # the re-upload glitch
    sizes = {load_grayscale(p).shape for p in files[:20]}
    assert len(sizes) > 1
    assert {image_channels(p) for p in files} == {1, 3}


def test_cohort_follows_real_prevalence_and_multiplicity():
    rng = np.random.default_rng(0)
    cohort = sample_cohort_labels(rng, 2000)
    positives = [c for c in cohort if c]
    assert abs(len(positives) / 2000 - PREVALENCE) < 0.01
    singles = sum(len(c) == 1 for c in positives) / len(positives)
    assert 0.70 < singles < 0.84  # real: 402 / 523 = 0.77
    counts = pd.Series([loc for c in positives for loc in c]).value_counts()
    assert counts.index[0] in ("L_ICA", "R_ICA", "R_ACOM")  # the commonest real locations


def test_anatomy_puts_aneurysm_on_its_labelled_segment():
    rng = np.random.default_rng(1)
    anatomy = add_aneurysms(sample_anatomy(rng), ["L_PCOM", "BA"], rng)
    labels = dict(zip(LOCATION_NAMES, anatomy.labels))
    assert labels["L_PCOM"] == 1 and labels["BA"] == 1 and sum(anatomy.labels) == 2
    for sph in anatomy.aneurysms:
        seg = anatomy.segment(sph.segment)
        gap = np.linalg.norm(seg.points - sph.center, axis=1).min()
        assert gap < seg.radii.max() + 1.5 * sph.radius  # attached to the wall


def test_preview_writes_a_png(kium_master, tmp_path):
    out = save_preview(kium_master, tmp_path / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("inner_first", [True, False])
def test_overlapping_aneurysms_leave_no_empty_mask(inner_first):
    import dataclasses

    from aneurysm.synth.anatomy import Sphere
    from aneurysm.synth.volume import voxelise

    rng = np.random.default_rng(5)
    anatomy = add_aneurysms(sample_anatomy(rng), ["L_MCA", "R_MCA"], rng)
    big = next(s for s in anatomy.spheres if s.location == "L_MCA")
    inner = Sphere(big.center.copy(), big.radius * 0.3, "ACOM", "ACOM")  # wholly inside it
    pair = (inner, big) if inner_first else (big, inner)
    anatomy = dataclasses.replace(anatomy, spheres=pair + anatomy.spheres)
    vol = voxelise(anatomy, "TOF", 1.5, rng)
    ids = [k for k in np.unique(vol.lesions) if k]
    assert ids == list(range(1, len(vol.lesion_locations) + 1))  # consecutive, none empty
    assert "L_MCA" in vol.lesion_locations
    # written first, the small one keeps its voxels; written after, it has none and is dropped
    assert ("ACOM" in vol.lesion_locations) == inner_first
