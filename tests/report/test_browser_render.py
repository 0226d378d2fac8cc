"""report.html as a user sees it: the report of a real small run opened in headless Chromium.
The page is not blank, every plot loads as an image (decoded, at the size of its PNG under
plots/), every table is rendered with its rows, and a screenshot shows something.

Needs a ``chromium`` (Debian's package) or ``chromium-browser`` binary on PATH; ``.ci/run``
installs it, and the tests skip, saying so, only where neither is found."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium or chromium-browser on PATH: the HTML report cannot be rendered "
    "(apt-get install chromium; .ci/run installs it)",
)

STEPS = [{"type": "torchscript"}, {"type": "export", "format": "onnx"}]
WINDOW = (1280, 1600)
# A PNG that cannot decode: the probe must report it as broken, or it could not see one.
BROKEN = "data:image/png;base64,iVBORw0KGgoAAAAN"

# Appended to a copy of the page: once everything has loaded, what the browser made of it goes
# into document.title, which --dump-dom prints.
PROBE = f"""
<img id="probe-broken" src="{BROKEN}" alt="probe-broken">
<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images, (img) => {{
    // the mean of every decoded RGBA value: a PNG cut short decodes to rows of nothing
    let mean = null;
    if (img.naturalWidth > 0) {{
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const context = canvas.getContext("2d");
      context.drawImage(img, 0, 0);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let sum = 0;
      for (const value of pixels) sum += value;
      mean = sum / pixels.length;
    }}
    return {{
      alt: img.alt, complete: img.complete, width: img.naturalWidth,
      height: img.naturalHeight, mean, shown: img.width * img.height,
    }};
  }});
  const tables = Array.from(document.querySelectorAll("table"), (table) => {{
    let heading = table.previousElementSibling;
    while (heading && !/^H[1-6]$/.test(heading.tagName)) heading = heading.previousElementSibling;
    return {{
      heading: heading ? heading.textContent : null,
      headers: Array.from(table.tHead.rows[0].cells, (c) => c.textContent),
      first_column: Array.from(table.tBodies[0].rows, (r) => r.cells[0].textContent),
      shown: table.offsetWidth * table.offsetHeight,
    }};
  }});
  const text = document.body.innerText;
  document.title = JSON.stringify({{ images, tables, text }});
}});
</script>
"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    """One headless Chromium run with its own throwaway profile; fails the test on a crash."""
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # tests and CI run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers with a small /dev/shm
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run: zoo:mlp on the digits, TorchScript and ONNX, with a target."""
    from modelpress.core.recipe import build_recipe
    from modelpress.engine import pipeline

    out = tmp_path_factory.mktemp("browser") / "run"
    recipe = build_recipe(
        {
            "model": "zoo:mlp",
            "data": {"source": "builtin:digits", "max_samples": 600},
            "evaluate": {"warmup": 1, "repeats": 3, "batch_sizes": [1, 8]},
            "targets": {"max_accuracy_drop": 1.0},
            "steps": STEPS,
        }
    )
    record = pipeline.run(recipe, out=out)
    # an untrained MLP: at chance on the digits, so measured and reported `collapsed`
    assert [s["status"] for s in record["steps"]] == ["collapsed", "collapsed"]
    return out


@pytest.fixture(scope="module")
def seen(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What Chromium made of report.html: its images, tables and text, once loaded."""
    page = (run_dir / "report.html").read_text()
    assert page.count("</body>") == 1
    probe = run_dir / "report-probe.html"  # next to report.html: relative links behave the same
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    profile = tmp_path_factory.mktemp("chromium-profile")
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), profile=profile)
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title is not None, dom.stdout[:2000]
    return json.loads(html_lib.unescape(title.group(1)))


def test_the_page_has_text(seen: dict[str, Any], run_dir: Path) -> None:
    text = seen["text"]
    assert text.startswith(f"modelpress report: {run_dir.name} — zoo:mlp")
    for heading in ("Progression", "Targets", "Recommendation", "Plots", "Notes", "Environment"):
        assert f"\n{heading}\n" in text


def test_every_plot_loads_as_an_image(seen: dict[str, Any], run_dir: Path) -> None:
    images = {img["alt"]: img for img in seen["images"]}
    broken = images.pop("probe-broken")
    assert broken["complete"] and broken["width"] == 0  # the probe does see a broken image
    plots = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    assert plots and sorted(images) == plots
    for name, img in images.items():
        with Image.open(run_dir / "plots" / name) as png:
            size, mean = png.size, sum(ImageStat.Stat(png.convert("RGBA")).mean) / 4
        assert img["complete"] and (img["width"], img["height"]) == size, name
        assert img["mean"] == pytest.approx(mean, abs=1.0), f"{name} is not drawn in full"
        assert img["shown"] > 0, f"{name} takes no room on the page"


def test_the_tables_are_rendered_with_their_rows(seen: dict[str, Any]) -> None:
    tables = {t["heading"]: t for t in seen["tables"]}
    assert {"Progression", "Targets", "Metrics"} <= set(tables)
    assert all(t["shown"] > 0 for t in tables.values())
    progression = tables["Progression"]
    assert progression["headers"][:4] == ["step", "format", "precision", "status"]
    steps = [name.rstrip(" ★") for name in progression["first_column"]]
    assert steps == ["baseline", "1. torchscript", "2. export-onnx"]
    assert tables["Targets"]["first_column"] == ["max_accuracy_drop"]
    assert [a.rstrip(" ★") for a in tables["Metrics"]["first_column"]] == [
        "baseline",
        "torchscript-fp32",
        "onnx-fp32",
    ]


def test_the_screenshot_is_not_blank(run_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    _chromium(
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={shot}",
        (run_dir / "report.html").as_uri(),
        profile=tmp_path / "profile",
    )
    with Image.open(shot) as image:
        assert image.size == WINDOW
        grey = image.convert("L")
    inked = sum(grey.histogram()[:200]) / (WINDOW[0] * WINDOW[1])  # clearly darker than white
    assert ImageStat.Stat(grey).stddev[0] > 10 and inked > 0.01
