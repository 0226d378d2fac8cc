"""report.html as a user sees it: the report of a real small run opened in headless Chromium.
The page is not blank, every plot loads as an image (decoded, at the size of its PNG under
plots/), every table is rendered with its rows, and a screenshot shows something. The demo's
report (tests/report/demo_record.json: the record ``make demo`` wrote, its paths under runs/demo) fits a 1400 px window,
and no character either report shows, nor any mark a report can show, is drawn as the empty
box of a missing glyph (an emoji such as ✅ is, where no colour-emoji font is installed).

Two Chromium runs in all: each page is laid out once, its DOM read and its screenshot taken.

Needs a ``chromium`` (Debian's package) or ``chromium-browser`` binary on PATH; ``.ci/run``
installs it, and the tests skip, saying so, only where neither is found."""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from helpers.browser import CHROMIUM, PROBE, _chromium
from modelpress.report import format as fmt
from modelpress.report import sections, write_reports

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium or chromium-browser on PATH: the HTML report cannot be rendered "
    "(apt-get install chromium; .ci/run installs it)",
)

STEPS = [{"type": "torchscript", "optimize_for_mobile": True}, {"type": "export", "format": "onnx"}]
WINDOW = (1400, 1600)  # the width every table of a report fits
DEMO_RECORD = Path(__file__).with_name("demo_record.json")
# Glyphs: every character checked, drawn alone in a cell of its own over the top left of the
# page, in the report's own fonts; a cell that looks like the one of a codepoint no font has is
# an empty box.
CELL, PER_ROW = 48, 25
NO_GLYPH = "\ue000"  # private use: no font draws it; the reference missing glyph
ALSO_NO_GLYPH = "\U0010fffd"  # another: it must be found missing, or the check sees nothing
OLD_MARK = "✅"  # what the Targets table showed: missing without a colour-emoji font
# Every mark a report can show, whether or not this run's report shows it.
MARKS = {
    fmt.check(True), fmt.check(False), fmt.MISSING,
    sections.RECOMMENDED_MARK, sections.UNRELIABLE_MARK, sections.SLOWER_MARK,
}  # fmt: skip


def _glyph_cells(chars: list[str]) -> str:
    cells = "".join(
        f'<span style="position:absolute;left:{(i % PER_ROW) * CELL}px;'
        f"top:{(i // PER_ROW) * CELL}px;width:{CELL}px;height:{CELL}px;font-size:28px;"
        f'line-height:{CELL}px;text-align:center;overflow:hidden">{html_lib.escape(c)}</span>'
        for i, c in enumerate(chars)
    )
    rows = (len(chars) + PER_ROW - 1) // PER_ROW
    return (
        f'<div style="position:absolute;left:0;top:0;width:{PER_ROW * CELL}px;'
        f'height:{rows * CELL}px;background:#fff;z-index:99999">{cells}</div>'
    )


class _Text(HTMLParser):
    """The text of a page, without its style and script."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _page_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text())
    return "".join(parser.parts)


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


def _probe(page: Path, extra: str, profile: Path, shot: Path, height: int) -> dict[str, Any]:
    """``page`` with the probe (and ``extra``) appended, laid out once in a window
    ``WINDOW[0]`` wide: what the probe saw, and a screenshot in ``shot``."""
    text = page.read_text()
    assert text.count("</body>") == 1
    probe = page.with_name(f"{page.stem}-probe.html")  # beside it: relative links the same
    probe.write_text(text.replace("</body>", PROBE + extra + "</body>"))
    dom = _chromium(
        f"--window-size={WINDOW[0]},{height}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        f"--screenshot={shot}",
        probe.as_uri(),
        profile=profile,
    )
    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title is not None, dom.stdout[:2000]
    return json.loads(html_lib.unescape(title.group(1)))


@pytest.fixture(scope="module")
def rendered(
    run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    """What Chromium made of report.html (its images, tables, text and layout, once loaded)
    and its screenshot."""
    where = tmp_path_factory.mktemp("chromium")
    shot = where / "report.png"
    seen = _probe(run_dir / "report.html", "", where / "profile", shot, WINDOW[1])
    return seen, shot


@pytest.fixture(scope="module")
def seen(rendered: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    return rendered[0]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's report, written from its record."""
    out = tmp_path_factory.mktemp("demo")
    write_reports(json.loads(DEMO_RECORD.read_text()), out)
    return out


@pytest.fixture(scope="module")
def glyphs(run_dir: Path, demo_dir: Path) -> list[str]:
    """Every character checked: the references, then each non-ASCII character of both
    reports' text and every mark a report can show."""
    shown = _page_text(run_dir / "report.html") + _page_text(demo_dir / "report.html")
    chars = {c for c in shown + "".join(MARKS) if ord(c) > 127 and not c.isspace()}
    return [NO_GLYPH, ALSO_NO_GLYPH, OLD_MARK, *sorted(chars - {OLD_MARK})]


@pytest.fixture(scope="module")
def demo_rendered(
    demo_dir: Path, glyphs: list[str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    """The demo's report laid out at 1400 px with the glyph cells over its top left: what the
    probe saw, and the screenshot."""
    where = tmp_path_factory.mktemp("chromium-demo")
    shot = where / "demo.png"
    seen = _probe(demo_dir / "report.html", _glyph_cells(glyphs), where / "profile", shot, 900)
    return seen, shot


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


def test_the_screenshot_is_not_blank(rendered: tuple[dict[str, Any], Path]) -> None:
    with Image.open(rendered[1]) as image:
        assert image.size == WINDOW
        grey = image.convert("L")
    inked = sum(grey.histogram()[:200]) / (WINDOW[0] * WINDOW[1])  # clearly darker than white
    assert ImageStat.Stat(grey).stddev[0] > 10 and inked > 0.01


def test_a_note_from_pytorch_reads_as_one_plain_sentence(seen: dict[str, Any]) -> None:
    notes = seen["text"].split("\nNotes\n", 1)[1].split("\nEnvironment\n", 1)[0]
    assert "INTERNAL ASSERT" not in notes and "report a bug" not in notes
    assert "torchscript-fp32: " in notes  # optimize_for_mobile ran, or says why not in words


@pytest.mark.parametrize("which", ["small run", "demo"])
def test_every_table_fits_a_1400_px_window(
    which: str,
    rendered: tuple[dict[str, Any], Path],
    demo_rendered: tuple[dict[str, Any], Path],
) -> None:
    seen = (rendered if which == "small run" else demo_rendered)[0]
    page = seen["page"]
    assert page["scroll_width"] <= WINDOW[0], "the page scrolls sideways"
    wide = {
        t["heading"]: round(t["right"])
        for t in seen["tables"]
        if t["right"] > page["content_right"] + 0.5
    }
    assert not wide, f"past the page's right edge at {page['content_right']:.0f} px: {wide}"
    headings = [t["heading"] for t in seen["tables"]]
    assert "Progression" in headings and "Detection benchmark" not in headings  # classification


def _cell(image: Image.Image, i: int) -> Image.Image:
    x, y = (i % PER_ROW) * CELL, (i // PER_ROW) * CELL
    return image.crop((x + 2, y + 2, x + CELL - 2, y + CELL - 2)).convert("L")


def _ink(cell: Image.Image) -> int:
    return sum(cell.histogram()[:160])


def _like(cell: Image.Image, reference: Image.Image) -> bool:
    """Drawn the same as ``reference``: at most 1 % of the pixels differ clearly."""
    differ = sum(ImageChops.difference(cell, reference).histogram()[64:])
    return differ <= 0.01 * cell.width * cell.height


def _no_font_has(char: str) -> bool:
    """fontconfig knows no installed font with a glyph for ``char``."""
    fc = shutil.which("fc-list")
    if fc is None:
        return False
    found = subprocess.run([fc, f":charset={ord(char):x}"], capture_output=True, text=True)
    return found.returncode == 0 and not found.stdout.strip()


def test_no_mark_is_drawn_as_a_missing_glyph_box(
    demo_rendered: tuple[dict[str, Any], Path], glyphs: list[str]
) -> None:
    with Image.open(demo_rendered[1]) as shot:
        cells = [_cell(shot, i) for i in range(len(glyphs))]
    box = cells[0]
    assert _ink(box) > 0, "the missing-glyph reference drew nothing: nothing to compare with"
    assert _like(cells[1], box), "another codepoint no font has is not seen as missing"
    if _no_font_has(OLD_MARK):  # the check would have caught ✅ in the Targets table
        assert _like(cells[2], box), f"{OLD_MARK} drew, yet fontconfig knows no font for it"
    assert set(MARKS) <= set(glyphs) and fmt.check(True) in glyphs
    missing = [
        f"{c} (U+{ord(c):04X})"
        for c, cell in zip(glyphs[3:], cells[3:], strict=True)
        if _like(cell, box) or _ink(cell) == 0
    ]
    assert not missing, f"drawn as an empty box or not at all: {', '.join(missing)}"
