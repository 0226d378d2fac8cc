"""report.html of a cascade bundle, as a user reads it: the cascade beside each stage alone, the
certificates and the bound, each stage's temperature fit and ONE reliability figure, for bundles
of two and three stages, a multi-class one, one without figures and one missing most fields."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from modelpress.deploy.calibration import reliability
from modelpress.deploy.cascade import BUNDLE_FILE, CascadeError
from modelpress.deploy.cascade_report import write_report

DATA = "builtin:digits-manipulated"
POSITIVES_MEASURE = "positives exiting negative / positives"


# ---------------------------------------------------------------------- a hand-made bundle


def _bins(seed: int, sharpness: float, temperature: float, multiclass: bool = False) -> dict:
    """Reliability bins before and after T, as deploy/cascade.py records them, for logits
    ``sharpness`` times too sure of themselves (labels drawn from the true probabilities)."""
    from scipy.special import expit, softmax

    rng = np.random.default_rng(seed)
    if multiclass:
        z = rng.normal(0.0, 2.0, (600, 4))
        cumulative = softmax(z, axis=1).cumsum(axis=1)
        y = (rng.random((600, 1)) > cumulative).sum(axis=1)
        before, after = softmax(sharpness * z, axis=1), softmax(sharpness * z / temperature, axis=1)
    else:
        z = rng.normal(0.0, 2.0, 600)
        y = (rng.random(600) < expit(z)).astype(np.int64)
        before, after = expit(sharpness * z), expit(sharpness * z / temperature)
    return {
        "before": reliability(before, y).to_dict(),
        "after": reliability(after, y).to_dict(),
    }


def _calibration(t: float, nll: tuple[float, float], ece: tuple[float, float], seed: int) -> dict:
    return {
        "temperature": t,
        "nll_before": nll[0],
        "nll_after": nll[1],
        "ece_before": ece[0],
        "ece_after": ece[1],
        "accepted": True,
        "reason": f"lowers NLL from {nll[0]:.4g} to {nll[1]:.4g}",
        "reliability": _bins(seed, t, t),
    }


def _certificate(**fields: Any) -> dict:
    base = {
        "kind": "binary", "low": 0.08, "high": 0.97, "positives": 236, "passed": 2,
        "upper_bound": 0.026435331379757884, "max_leakage": 0.05, "confidence": 0.95,
        "certified": True, "items": 1180, "deferred_share": 0.322, "exit_share": 0.678,
        "exit_negative_share": 0.55, "exit_positive_share": 0.128,
        "positive_exit_precision": 0.987, "measure": POSITIVES_MEASURE, "negatives": 944,
        "false_alarms": 2, "false_alarm_bound": 0.0066541144250860905, "max_false_alarm": 0.05,
        "note": "",
    }  # fmt: skip
    return {**base, **fields}


def _alone(auc: float, f1: float, p: float, r: float, ms: float) -> dict:
    return {"auc": auc, "f1": f1, "precision": p, "recall": r, "ms_per_item": ms,
            "throughput_per_s": 1000 / ms}  # fmt: skip


def two_stage() -> dict:
    """A binary cascade as ``cascade build`` writes it: int8 fast stage, fp32 precise stage."""
    stages = [
        {"name": "fast", "file": "stage0-fast.onnx", "temperature": 1.73,
         "calibration": _calibration(1.73, (0.412, 0.298), (0.0814, 0.0192), seed=0),
         "certificate": _certificate()},
        {"name": "precise", "file": "stage1-precise.pt", "temperature": 1.21,
         "calibration": _calibration(1.21, (0.231, 0.214), (0.0305, 0.0117), seed=1),
         "certificate": None},
    ]  # fmt: skip
    validation = {
        "cascade": {
            "auc": 0.9712, "f1": 0.8843, "precision": 0.9021, "recall": 0.8672,
            "leakage": 0.0125, "leaked": 3, "positives": 240, "deferred": 0.315,
            "stage_share": [0.685, 0.315], "ms_per_item": 0.0412,
            "throughput_per_s": 24272.0, "items": 1198,
        },
        "stages": [
            {"name": "fast", "alone": _alone(0.9406, 0.8123, 0.8, 0.825, 0.0151)},
            {"name": "precise", "alone": _alone(0.9788, 0.8921, 0.9102, 0.8747, 0.1104)},
        ],
    }  # fmt: skip
    return {
        "format_version": 1,
        "data": DATA,
        "input_shape": "1,1,16,16",
        "task": "binary",
        "bound": {
            "max_leakage": 0.05, "confidence": 0.95, "positives": 236,
            "split": "1 early stage(s): leakage 0.05 at confidence 0.95 each (union bound)",
        },
        "stages": stages,
        "validation": validation,
    }  # fmt: skip


def three_stage() -> dict:
    doc = two_stage()
    doc["bound"]["split"] = "2 early stage(s): leakage 0.025 at confidence 0.975 each (union bound)"
    first, last = doc["stages"]
    first["certificate"] = _certificate(
        low=0.03, high=None, passed=0, upper_bound=0.015509317501757436, max_leakage=0.025,
        confidence=0.975, deferred_share=0.71, false_alarms=0, false_alarm_bound=0.0,
    )  # fmt: skip
    middle = {
        "name": "medium", "file": "stage1-medium.tflite", "temperature": 1.42,
        "calibration": _calibration(1.42, (0.318, 0.262), (0.0533, 0.0148), seed=2),
        "certificate": _certificate(
            low=0.11, high=0.93, positives=150, passed=0, upper_bound=0.02429259716610854,
            max_leakage=0.025, confidence=0.975, items=838, deferred_share=0.404,
            negatives=688, false_alarms=1, false_alarm_bound=0.0107, max_false_alarm=0.025,
        ),
    }  # fmt: skip
    last["file"] = "stage2-precise.pt"
    doc["stages"] = [first, middle, last]
    v = doc["validation"]
    v["cascade"]["stage_share"] = [0.29, 0.41, 0.30]
    v["cascade"]["deferred"] = 0.30
    v["stages"].insert(1, {"name": "medium", "alone": _alone(0.9611, 0.8544, 0.86, 0.849, 0.042)})
    return doc


def multiclass() -> dict:
    """Ten digit classes; the early stage exits on top-1 confidence (no low threshold)."""
    doc = two_stage()
    doc["task"] = "classification"
    doc["classes"] = [str(i) for i in range(10)]
    for i, stage in enumerate(doc["stages"]):
        t = stage["temperature"]
        stage["calibration"]["reliability"] = _bins(10 + i, t, t, multiclass=True)
    doc["stages"][0]["certificate"] = {
        "kind": "confidence", "low": None, "high": 0.91, "positives": 410, "passed": 3,
        "upper_bound": 0.018801976204447724, "max_leakage": 0.03, "confidence": 0.95,
        "certified": True, "items": 1180, "deferred_share": 0.653, "exit_share": 0.347,
        "exit_negative_share": None, "exit_positive_share": None,
        "positive_exit_precision": None, "measure": "errors among early exits / early exits",
        "negatives": None, "false_alarms": None, "false_alarm_bound": None,
        "max_false_alarm": None, "note": "",
    }  # fmt: skip
    doc["validation"] = {
        "cascade": {"accuracy": 0.9466, "auc": None, "deferred": 0.653,
                    "stage_share": [0.347, 0.653], "ms_per_item": 0.081,
                    "throughput_per_s": 12345.0, "items": 1198},
        "stages": [
            {"name": "fast", "alone": {"accuracy": 0.9012, "auc": None, "ms_per_item": 0.0151,
                                       "throughput_per_s": 66225.0}},
            {"name": "precise", "alone": {"accuracy": 0.9571, "auc": None,
                                          "ms_per_item": 0.1104, "throughput_per_s": 9058.0}},
        ],
    }  # fmt: skip
    return doc


def _bundle(tmp_path: Path, doc: dict) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir(parents=True)
    (bundle / BUNDLE_FILE).write_text(json.dumps(doc, indent=2))
    return bundle


# ---------------------------------------------------------------------- reading the page


class _Page(HTMLParser):
    """Tables (under their h2), images and visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[dict[str, str]] = []
        self.text: list[str] = []
        self._heading = ""
        self._in: str | None = None
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "h2", "h3"):
            self._in, self._heading = tag, ""
        elif tag == "table":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append({k: v or "" for k, v in attrs})

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3"):
            self._in = None
        elif tag == "table" and self._rows is not None:
            self.tables[self._heading] = self._rows
            self._rows = None
        elif tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._heading += data
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def _read(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


def _rows(page: _Page, heading: str) -> dict[str, dict[str, str]]:
    """{first cell: {header: cell}} of the table under ``heading``."""
    header, *body = page.tables[heading]
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


def _pngs(page: _Page) -> dict[str, Image.Image]:
    """Every embedded image decoded (each must be a PNG given as a data: URI)."""
    out = {}
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix), img["alt"]
        data = base64.b64decode(img["src"][len(prefix) :], validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()  # decodes every row: a truncated PNG raises here
        assert image.format == "PNG"
        out[img["alt"]] = image
    assert len(out) == len(page.images), "two images share a name"
    return out


# ---------------------------------------------------------------------- tests


def test_two_stages_report_shows_the_cascade_the_certificate_and_the_calibration(
    tmp_path: Path,
) -> None:
    bundle = _bundle(tmp_path, two_stage())

    path = write_report(bundle)

    assert path == bundle / "report.html" and path.is_file()
    assert not [p.name for p in bundle.iterdir() if p.name.startswith(".")], "temp file left"
    page = _read(path)
    text = "".join(page.text)
    assert f"Figures measured on the validation split of {DATA}" in text
    summary = _rows(page, "Cascade vs each stage alone")
    assert list(summary) == ["cascade (1.20K items)", "fast alone", "precise alone"]
    cascade = summary["cascade (1.20K items)"]
    assert (cascade["AUC"], cascade["F1"], cascade["P"], cascade["R"]) == (
        "0.9712", "0.8843", "0.9021", "0.8672",
    )  # fmt: skip
    assert cascade["leakage"] == "1.25% (3/240)"
    assert cascade["deferred"] == "31.5%"
    assert cascade["ms/item"] == "0.0412" and cascade["items/s"] == "24.3K"
    assert cascade["speed-up vs last"] == "2.68×"  # 0.1104 / 0.0412
    assert summary["fast alone"]["decides"] == "68.5%"
    assert summary["fast alone"]["AUC"] == "0.9406"
    assert summary["precise alone"]["speed-up vs last"] == "1.00×"
    assert "accuracy" not in page.tables["Cascade vs each stage alone"][0]

    certs = _rows(page, "Certificates")
    assert list(certs) == ["fast"]  # the last stage has no certificate
    fast = certs["fast"]
    assert (fast["low"], fast["high"], fast["positives"], fast["passed"]) == (
        "0.0800", "0.970", "236", "2",
    )  # fmt: skip
    assert (fast["upper bound"], fast["max leakage"], fast["certified"]) == (
        "2.64%",
        "5.00%",
        "yes",
    )
    assert fast["deferred"] == "32.2%"
    assert fast["false-alarm bound"] == "0.67% (max 5.00%), 2/944 negatives"
    assert "1 early stage(s): leakage 0.05 at confidence 0.95 each (union bound)" in text
    assert "The last stage, precise, decides every item left at P ≥ 0.5." in text

    calibration = _rows(page, "Calibration")
    assert calibration["fast"]["temperature"] == "1.73"
    assert calibration["fast"]["accepted"] == "yes"
    assert calibration["fast"]["reason"] == "lowers NLL from 0.412 to 0.298"
    assert calibration["fast"]["NLL"] == "0.412 → 0.298"
    assert calibration["fast"]["ECE"] == "0.0814 → 0.0192"
    assert calibration["precise"]["ECE"] == "0.0305 → 0.0117"

    images = _pngs(page)
    assert sorted(images) == ["reliability.png", "stage_share.png"]
    assert [i["alt"] for i in page.images].count("reliability.png") == 1
    width, height = images["reliability.png"].size
    assert width >= 2 * 400 and height >= 400  # two panels side by side
    assert images["stage_share.png"].size[0] >= 800


def test_three_stages_give_two_certificates_and_three_reliability_panels(tmp_path: Path) -> None:
    two = _pngs(_read(write_report(_bundle(tmp_path / "two", two_stage()))))
    page = _read(write_report(_bundle(tmp_path / "three", three_stage())))

    certs = _rows(page, "Certificates")
    assert list(certs) == ["fast", "medium"]
    assert certs["fast"]["high"] == "never"  # nothing exits positive from the first stage
    assert certs["fast"]["upper bound"] == "1.55%" and certs["fast"]["max leakage"] == "2.50%"
    assert certs["medium"]["confidence"] == "97.5%"
    assert certs["medium"]["false-alarm bound"] == "1.07% (max 2.50%), 1/688 negatives"
    text = "".join(page.text)
    assert "2 early stage(s): leakage 0.025 at confidence 0.975 each (union bound)" in text
    assert "3.98% summed over the early stages" in text  # 1.551 % + 2.429 %
    summary = _rows(page, "Cascade vs each stage alone")
    assert [summary[f"{n} alone"]["decides"] for n in ("fast", "medium", "precise")] == [
        "29.0%", "41.0%", "30.0%",
    ]  # fmt: skip
    assert summary["medium alone"]["speed-up vs last"] == "2.63×"  # 0.1104 / 0.042
    assert list(_rows(page, "Calibration")) == ["fast", "medium", "precise"]
    images = _pngs(page)
    assert [i["alt"] for i in page.images].count("reliability.png") == 1
    # one panel per stage: three panels are half as wide again as two
    ratio = images["reliability.png"].size[0] / two["reliability.png"].size[0]
    assert ratio == pytest.approx(1.5, rel=0.05)


def test_a_multiclass_bundle_shows_accuracy_and_its_confidence_certificate(
    tmp_path: Path,
) -> None:
    page = _read(write_report(_bundle(tmp_path, multiclass())))

    header = page.tables["Cascade vs each stage alone"][0]
    assert header[:3] == ["", "accuracy", "AUC"]
    summary = _rows(page, "Cascade vs each stage alone")
    cascade = summary["cascade (1.20K items)"]
    assert (cascade["accuracy"], cascade["AUC"], cascade["F1"], cascade["leakage"]) == (
        "0.9466", "—", "—", "—",
    )  # fmt: skip
    assert summary["precise alone"]["accuracy"] == "0.9571"
    fast = _rows(page, "Certificates")["fast"]
    assert (fast["kind"], fast["low"], fast["high"]) == ("confidence", "—", "0.910")
    assert (fast["positives"], fast["passed"], fast["upper bound"]) == ("410", "3", "1.88%")
    assert fast["measure"] == "errors among early exits / early exits"
    assert fast["false-alarm bound"] == "—"
    text = "".join(page.text)
    assert "task classification" in text and "0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in text
    images = _pngs(page)
    assert sorted(images) == ["reliability.png", "stage_share.png"]


def test_a_bundle_without_validation_figures_still_shows_certificates_and_calibration(
    tmp_path: Path,
) -> None:
    doc = two_stage()
    del doc["validation"]

    page = _read(write_report(_bundle(tmp_path, doc)))

    assert "Cascade vs each stage alone" not in page.tables
    assert "No figures: the bundle records no measurements." in "".join(page.text)
    assert list(_rows(page, "Certificates")) == ["fast"]
    assert list(_rows(page, "Calibration")) == ["fast", "precise"]
    assert list(_pngs(page)) == ["reliability.png"]


def test_figures_from_cascade_eval_replace_the_validation_figures_and_name_their_data(
    tmp_path: Path,
) -> None:
    doc = two_stage()
    bundle = _bundle(tmp_path, doc)
    held_out = copy.deepcopy(doc["validation"])
    held_out["cascade"].update(auc=0.9555, items=1797, leaked=5, positives=180, leakage=5 / 180)

    page = _read(write_report(bundle, held_out, "held-out check", data="builtin:digits"))

    text = "".join(page.text)
    assert "held-out check" in text
    assert "Figures measured on builtin:digits (not the build's data)." in text
    cascade = _rows(page, "Cascade vs each stage alone")["cascade (1.80K items)"]
    assert cascade["AUC"] == "0.9555" and cascade["leakage"] == "2.78% (5/180)"
    assert "0.9712" not in text  # the build's figures are not shown


def test_missing_and_malformed_fields_show_a_dash_and_never_crash(tmp_path: Path) -> None:
    doc = two_stage()
    doc.pop("bound")
    fast, precise = doc["stages"]
    fast["name"] = "<script>alert(1)</script>"
    fast["certificate"] = {"kind": "binary", "low": 0.2}  # most fields gone
    fast["calibration"]["reliability"]["after"] = {"edges": [0, 1], "count": [1, 2]}  # bad shape
    precise.pop("calibration")
    doc["validation"]["cascade"] = {"auc": "high", "stage_share": [0.5]}  # wrong types, short
    doc["validation"]["stages"][1]["alone"] = None

    path = write_report(_bundle(tmp_path, doc))

    raw = path.read_text()
    assert "<script>" not in raw and "&lt;script&gt;" in raw
    page = _read(path)
    summary = _rows(page, "Cascade vs each stage alone")
    assert summary["cascade (— items)"]["AUC"] == "—"
    assert summary["precise alone"]["ms/item"] == "—"
    assert summary["fast alone"]["speed-up vs last"] == "—"
    cert = _rows(page, "Certificates")["<script>alert(1)</script>"]
    assert (cert["low"], cert["positives"], cert["upper bound"], cert["certified"]) == (
        "0.200", "—", "—", "—",
    )  # fmt: skip
    assert "No overall bound recorded." in "".join(page.text)
    assert _rows(page, "Calibration")["precise"]["ECE"] == "— → —"
    # the fast stage's "before" bins are still drawn; the stage shares do not add up, so no bar
    assert list(_pngs(page)) == ["reliability.png"]


def test_an_old_bundle_without_reliability_bins_has_no_reliability_figure(tmp_path: Path) -> None:
    doc = two_stage()
    for stage in doc["stages"]:
        del stage["calibration"]["reliability"]

    page = _read(write_report(_bundle(tmp_path, doc)))

    assert "No reliability bins recorded in the bundle." in "".join(page.text)
    assert list(_pngs(page)) == ["stage_share.png"]
    assert _rows(page, "Calibration")["fast"]["ECE"] == "0.0814 → 0.0192"


def test_a_second_report_replaces_the_first(tmp_path: Path) -> None:
    doc = two_stage()
    bundle = _bundle(tmp_path, doc)
    write_report(bundle)
    doc["validation"]["cascade"]["auc"] = 0.5
    (bundle / BUNDLE_FILE).write_text(json.dumps(doc))

    page = _read(write_report(bundle))

    assert _rows(page, "Cascade vs each stage alone")["cascade (1.20K items)"]["AUC"] == "0.5000"
    assert sorted(p.name for p in bundle.iterdir()) == [BUNDLE_FILE, "report.html"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            None,
            r"not a cascade bundle \(no cascade.json\); build one with modelpress cascade build",
        ),
        ("{not json", r"cascade.json: not a readable cascade description"),
        ("[1, 2]", r"cascade.json: not a cascade description \(a JSON object is expected\)"),
    ],
)
def test_a_directory_that_is_no_bundle_is_refused_and_nothing_written(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / BUNDLE_FILE).write_text(content)

    with pytest.raises(CascadeError, match=message):
        write_report(tmp_path)

    assert not (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """Every image decodes in the browser at its PNG's size; the tables take room."""
    from helpers.browser import CHROMIUM, PROBE, _chromium

    if CHROMIUM is None:
        pytest.skip("no chromium or chromium-browser on PATH (apt-get install chromium)")
    path = write_report(_bundle(tmp_path, three_stage()))
    probe = path.with_name("report-probe.html")
    probe.write_text(path.read_text().replace("</body>", PROBE + "</body>"))

    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(),
                    profile=tmp_path / "profile")  # fmt: skip

    title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
    assert title is not None, dom.stdout[:2000]
    import html as html_lib

    seen = json.loads(html_lib.unescape(title.group(1)))
    images = {img["alt"]: img for img in seen["images"]}
    assert images.pop("probe-broken")["width"] == 0
    expected = _pngs(_read(path))
    assert sorted(images) == sorted(expected) == ["reliability.png", "stage_share.png"]
    for name, img in images.items():
        assert img["complete"] and (img["width"], img["height"]) == expected[name].size, name
        assert img["shown"] > 0
    tables = {t["heading"]: t for t in seen["tables"]}
    assert {"Cascade vs each stage alone", "Certificates", "Calibration"} <= set(tables)
    assert all(t["shown"] > 0 for t in tables.values())
    assert tables["Certificates"]["first_column"] == ["fast", "medium"]
