"""A bundle's calibration evidence, and its certificates recounted from it on every load.

A certificate is a claim: "on these calibration items, ``passed`` of ``positives`` went the
wrong way under these thresholds, so the rate is ≤ ``upper_bound`` at ``confidence``". The
bundle keeps what the claim was counted on (``calibration.npz``: each early stage's raw scores
on the calibration split, the labels, and the input sharpness where bins use it), so a loader
can count again: the scores are temperature-scaled with the stage's stored temperature, routed
through its stored thresholds (bin by bin), stage after stage as items flow, and the
Clopper–Pearson bound is computed again. A certificate that counts differently, a bound that
does not follow from its counts, or one over the stated maximum is refused in one line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.deploy.certify import TOP_CONFIDENCE, TWO_THRESHOLDS
from modelpress.deploy.routing import CascadeError, entropy, route

EVIDENCE_FILE = "calibration.npz"


def write(bundle: Path, scores: list[np.ndarray], labels: np.ndarray, quality: Any) -> str:
    """Write the evidence (``scores``: each early stage's raw scores on every calibration
    item; ``labels`` as the cascade counts them); its file name."""
    arrays = {f"scores{i}": np.asarray(z) for i, z in enumerate(scores)}
    arrays["labels"] = np.asarray(labels, dtype=np.int64)
    if quality is not None:
        arrays["quality"] = np.asarray(quality, dtype=np.float64)
    tmp = bundle / f".{EVIDENCE_FILE}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(bundle / EVIDENCE_FILE)
    return EVIDENCE_FILE


def read(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as e:
        raise CascadeError(
            f"{path}: not readable calibration evidence ({type(e).__name__})"
        ) from None


def _close(a: Any, b: float) -> bool:
    return isinstance(a, int | float) and math.isclose(float(a), b, rel_tol=1e-9, abs_tol=1e-12)


def _exits_nothing(cert: dict[str, Any]) -> bool:
    """Whether the thresholds let no item exit at all (a bin that defers everything)."""
    if cert.get("kind") == TOP_CONFIDENCE:
        return cert.get("high") is None
    return cert.get("high") is None and float(cert.get("low") or 0.0) <= 0.0


def _recount(
    cert: dict[str, Any], p: np.ndarray, y: np.ndarray, guarded: list[int] | None
) -> tuple[int, int]:
    """(trials, failures) of ``cert``'s measure on calibration probabilities ``p``, labels
    ``y`` (``guarded``: the positive classes of a classification cascade, if any)."""
    if cert["kind"] == TWO_THRESHOLDS:
        positive = y == 1
        return int(positive.sum()), int((positive & (p < float(cert["low"]))).sum())
    top = p.argmax(axis=1) if len(p) else np.zeros(0, np.int64)
    high = np.inf if cert.get("high") is None else float(cert["high"])
    exits = p.max(axis=1, initial=0.0) >= high
    if guarded:
        mine = np.isin(y, guarded)
        return int(mine.sum()), int((mine & exits & ~np.isin(top, guarded)).sum())
    return int(exits.sum()), int((exits & (top != y)).sum())


def _false_alarms(cert: dict[str, Any], p: np.ndarray, y: np.ndarray) -> int:
    """Binary: calibration negatives exiting positive under ``cert``'s high threshold."""
    if cert.get("high") is None:
        return 0
    return int(((y == 0) & (p >= float(cert["high"]))).sum())


def _check(
    cert: Any,
    p: np.ndarray,
    y: np.ndarray,
    guarded: list[int] | None,
    level: tuple[float, float],
    where: str,
) -> None:
    """Raise when ``cert`` does not hold on (``p``, ``y``) at ``level`` (max, confidence)."""
    from modelpress.deploy.certify import clopper_pearson_upper

    max_leakage, confidence = level
    if not isinstance(cert, dict) or cert.get("kind") not in (TWO_THRESHOLDS, TOP_CONFIDENCE):
        raise CascadeError(f"{where}: not a certificate modelpress reads")
    try:
        trials, failures = _recount(cert, p, y, guarded)
        alarms = _false_alarms(cert, p, y) if cert["kind"] == TWO_THRESHOLDS else None
    except (KeyError, TypeError, ValueError) as e:
        raise CascadeError(f"{where}: its thresholds are unreadable ({e})") from None
    claimed = (cert.get("positives"), cert.get("passed"))
    said = f"{claimed[1]} of {claimed[0]}"
    nothing = _exits_nothing(cert)  # a bin deferring everything claims 0 whatever it counts
    counts_hold = (failures == 0 and claimed[1] == 0) if nothing else claimed == (trials, failures)
    if not counts_hold or (alarms is not None and cert.get("false_alarms", alarms) != alarms):
        raise CascadeError(
            f"{where}: under its thresholds {failures} of {trials} calibration items go the way "
            f"it bounds (and {alarms} negatives exit positive), where it says {said}: it was not "
            "built with these thresholds; rebuild the bundle with modelpress cascade build"
        )
    upper = cert.get("upper_bound")
    bound = (
        0.0
        if nothing and _close(upper, 0.0)
        else clopper_pearson_upper(min(failures, trials), trials, confidence)
    )
    if not _close(upper, bound):
        raise CascadeError(
            f"{where}: its bound {upper!r} does not follow from {said} at confidence "
            f"{confidence:.4g} (Clopper–Pearson gives {bound:.4g}); rebuild the bundle"
        )
    if not (
        _close(cert.get("max_leakage"), max_leakage) and _close(cert.get("confidence"), confidence)
    ):
        raise CascadeError(
            f"{where}: it certifies ≤ {cert.get('max_leakage')!r} at {cert.get('confidence')!r}, "
            f"but the cascade's bound gives this stage ≤ {max_leakage:.4g} at {confidence:.4g}; "
            "rebuild the bundle"
        )
    if cert.get("certified") is not True or bound > max_leakage + 1e-12:
        raise CascadeError(
            f"{where}: its bound {bound:.4g} is over the {max_leakage:.4g} it certifies; "
            "rebuild the bundle"
        )


def verify(
    bundle: Path, doc: dict[str, Any], stages: list[Any], evidence: dict[str, np.ndarray]
) -> None:
    """Recount every early stage's certificate (``stages``: the bundle's ``Stage``s, runtimes
    not opened yet) from ``evidence``; one line when any claim does not hold."""
    from modelpress.deploy.calibration import calibrated_probs

    where = bundle / "cascade.json"
    bound = doc.get("bound")
    try:
        max_leakage, confidence = float(bound["max_leakage"]), float(bound["confidence"])
    except (TypeError, KeyError, ValueError):
        raise CascadeError(f"{where}: 'bound' holds no max_leakage and confidence") from None
    if not (0 < max_leakage < 1 and 0 < confidence < 1):
        raise CascadeError(f"{where}: bound {max_leakage} at {confidence} is not a certificate")
    early = len(stages) - 1
    leak_each, conf_each = max_leakage / early, 1 - (1 - confidence) / early
    y = evidence.get("labels")
    if y is None or any(f"scores{i}" not in evidence for i in range(early)):
        raise CascadeError(f"{where}: the calibration evidence lacks scores or labels")
    guarded = _guarded(doc)
    reach = np.arange(len(y))
    for i, st in enumerate(stages[:early]):
        z = evidence[f"scores{i}"]
        if len(z) != len(y):
            raise CascadeError(
                f"{where}: stage {i}'s calibration scores and labels differ in count"
            )
        probs = calibrated_probs(z, st.temperature)[reach]
        sure = None  # a confidence exit routes on the Task's confidence, as the stage does
        if (st.certificate or {}).get("kind") == TOP_CONFIDENCE:
            sure = st.task.confidence(z[reach] / st.temperature)
        ys = y[reach]
        score = None
        if st.buckets is not None:
            b = st.buckets
            if b.get("by") == "entropy":
                score = entropy(probs)
            elif "quality" in evidence:
                score = evidence["quality"][reach]
            else:
                raise CascadeError(f"{where}: stage {i}'s bins need the inputs' sharpness")
            ids = np.digitize(score, b["edges"])
            certs = b["certificates"]
            each = 1 - (1 - conf_each) / len(certs)
            for k, cert in enumerate(certs):
                mask = ids == k
                at = f"{where}: stage {i} bin {k}"
                _check(cert, probs[mask], ys[mask], guarded, (leak_each, each), at)
        elif st.certificate is None:
            raise CascadeError(f"{where}: early stage {i} has no certificate")
        else:
            at = f"{where}: stage {i}"
            _check(st.certificate, probs, ys, guarded, (leak_each, conf_each), at)
        reach = reach[route(probs, st.certificate, st.buckets, score, sure) < 0]


def _guarded(doc: dict[str, Any]) -> list[int] | None:
    """The classes whose items' exits a confidence certificate counts (None: every error)."""
    from modelpress.deploy.exits import rule_of

    rule = rule_of(doc)
    return rule.guarded(doc) if rule is not None else None
