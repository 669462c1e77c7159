"""report.html: one self-contained page per run, checked as HTML and in a real headless browser.

The browser test loads a copy of the page with a probe script appended (the page itself has no
script), lets Chromium lay it out, and reads back from the DOM how many images decoded and which
sections are empty; it also saves a screenshot.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_config

from aneurysm.cli.main import cli

pytestmark = pytest.mark.slow  # fine-tunes a run to report on


FINETUNE_SECTIONS = {"summary", "presence", "locations", "curves", "cases", "held-out",
                     "provenance"}


class _Page(HTMLParser):
    """Sections, images and external references of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.images: list[dict] = []
        self.external: list[str] = []
        self.scripts = 0
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._open.append(a.get("id", ""))
            self.sections.setdefault(self._open[-1], "")
        if tag == "img":
            self.images.append(a)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            value = a.get(key) or ""
            if value.startswith(("http:", "https:", "//")) or (tag == "link" and value):
                self.external.append(value)

    def handle_endtag(self, tag):
        if tag == "section" and self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open:
            self.sections[self._open[-1]] += data.strip()


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, kium_master) -> Path:
    """A small fine-tuned run, its test set predicted and scored with ``evaluate --run``."""
    tmp = tmp_path_factory.mktemp("html")
    cfg = write_config(tmp)
    run = tmp / "run"
    r = CliRunner().invoke(cli, ["finetune", "--root", str(kium_master), "--out", str(run),
                                 "--config", str(cfg), "--folds", "2"])
    assert r.exit_code == 0, r.output
    assert (run / "report.html").is_file()  # finetune writes it too
    out = tmp / "output.csv"
    r = CliRunner().invoke(cli, ["predict", "--run", str(run), "--input",
                                 str(kium_master / "test_set"), "--output", str(out)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["evaluate", "--truth", str(kium_master / "groundtruth.csv"),
                                 "--pred", str(out), "--run", str(run), "--bootstrap", "200"])
    assert r.exit_code == 0, r.output
    return run


def test_finetune_report_is_self_contained_and_complete(finetuned):
    html = finetuned / "report.html"
    page = _parse(html)
    assert FINETUNE_SECTIONS <= set(page.sections)
    assert all(page.sections[s] for s in FINETUNE_SECTIONS), \
        [s for s in FINETUNE_SECTIONS if not page.sections[s]]
    assert page.scripts == 0 and page.external == []  # readable without JS, nothing fetched
    assert len(page.images) >= 4
    assert all(i["src"].startswith("data:image/png;base64,") for i in page.images)
    assert all(len(i.get("alt", "")) > 20 for i in page.images)  # alt text on every figure
    assert html.stat().st_size < 3_000_000
    text = html.read_text()
    assert "held-out − CV" in text and "Held-out test set" in text
    assert "<table>" in text and "git commit" in text and "seed" in text
    assert "Trained from scratch" in text  # provenance: no --init
    cases = (finetuned / "report_cases.json").read_text()
    if '"study_id"' in cases:  # every case names the eight views it shows
        names = re.findall(r"Views shown: ([^<]*)\.", text)
        assert names and all(len(n.split(", ")) == 8 for n in names)
        assert all(v in names[0] for v in ("LI-A", "LI-B", "LV-A", "LV-B", "RI-A", "RI-B",
                                           "RV-A", "RV-B"))


def test_pretrain_report_shows_sources_and_projected_cases(external_root, tmp_path, cfg):
    out = tmp_path / "pre"
    r = CliRunner().invoke(cli, ["pretrain", "--data-root", str(external_root), "--out",
                                 str(out), "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    html = out / "report.html"
    page = _parse(html)
    assert {"sources", "curves", "projected", "provenance"} <= set(page.sections)
    assert all(page.sections[s] for s in ("sources", "curves", "projected", "provenance"))
    assert len(page.images) == 2 and all(i["src"].startswith("data:") for i in page.images)
    for source in ("adam", "lausanne", "rsna2025"):
        assert source in page.sections["sources"]
    # no DICOM patient identifier of the RSNA series reaches the page
    import pydicom

    dicoms = list((external_root / "rsna2025").rglob("*.dcm"))
    assert dicoms
    for path in dicoms[:20]:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for tag in ("PatientID", "PatientName", "PatientBirthDate"):
            value = str(ds.get(tag, "") or "")
            if len(value) >= 4:
                assert value not in html.read_text(), (tag, value)


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")


_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
  const empty = [...document.querySelectorAll('section')]
      .filter(s => s.innerText.trim().length === 0).map(s => s.id);
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-broken', broken);
  document.body.setAttribute('data-empty', empty.join(','));
});
</script>"""


@pytest.mark.skipif(_browser() is None, reason="no Chromium installed (Debian: apt-get install "
                                               "chromium); .ci/run installs it")
def test_report_renders_in_headless_chromium(finetuned, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text((finetuned / "report.html").read_text().replace("</body>",
                                                                     _PROBE + "</body>"))
    flags = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-quic", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(flags + ["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    images = int(re.search(r'data-images="(\d+)"', body).group(1))
    assert images >= 4
    assert 'data-broken="0"' in body, body  # every image decoded
    assert 'data-empty=""' in body, body  # no section is empty
    shot = tmp_path / "report.png"
    grab = subprocess.run(flags + ["--window-size=1200,3000", "--hide-scrollbars",
                                   f"--screenshot={shot}", (finetuned / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert grab.returncode == 0 and shot.is_file() and shot.stat().st_size > 20_000
