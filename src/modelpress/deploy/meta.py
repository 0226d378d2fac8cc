"""A cascade's optional meta-model: the final score from every stage's calibrated score and
which stages ran.

Items an early stage decides keep that stage's certified decision; the meta-model decides the
items that reach the last stage and gives every item its final score (so one score ranks items
whichever way they went, which is what the cascade's AUC measures). It is fitted on the
calibration split, and what it is judged by never comes from items it was fitted on: its
decision threshold and its figures come from out-of-fold scores (K-fold on calibration), and
the model kept is then refitted on all of calibration.

Stored without pickle: logistic regression as its coefficients in cascade.json, LightGBM as
its own text model file in the bundle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelpress.errors import ModelpressError

KINDS = ("logistic", "lightgbm")
FOLDS = 5
CLIP = 1e-6  # probabilities are clipped to [CLIP, 1 − CLIP] before their logarithm
LIGHTGBM_FILE = "meta-lightgbm.txt"


class MetaError(ModelpressError):
    """A meta-model that cannot be fitted or loaded as asked."""


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise MetaError(f"--meta {kind}: unknown meta-model; use one of {', '.join(KINDS)}")
    if kind == "lightgbm":
        try:
            import lightgbm  # noqa: F401
        except ImportError:
            raise MetaError(
                "--meta lightgbm needs LightGBM: pip install 'modelpress[lightgbm]' "
                "(or use --meta logistic)"
            ) from None


def features(stage_probs: list[np.ndarray], ran: np.ndarray, binary: bool) -> np.ndarray:
    """(N, F): per stage its calibrated log-odds (binary) or log-probabilities (K classes), 0
    where it did not run; then whether each stage after the first ran."""
    cols = []
    for i, p in enumerate(stage_probs):
        q = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1 - CLIP)
        f = np.log(q / (1 - q))[:, None] if binary else np.log(q)
        cols.append(f * ran[:, i : i + 1])
    cols.append(ran[:, 1:].astype(np.float64))
    return np.concatenate(cols, axis=1)


def feature_names(stages: list[str], binary: bool, classes: int) -> list[str]:
    names = []
    for s in stages:
        names += [f"{s}: log-odds"] if binary else [f"{s}: log p({k})" for k in range(classes)]
    return names + [f"{s} ran" for s in stages[1:]]


@dataclass
class MetaModel:
    kind: str
    binary: bool
    classes: int
    threshold: float | None  # binary: decide positive at or above; K classes: the top class
    coef: np.ndarray | None = None  # logistic: (1 or K, F)
    intercept: np.ndarray | None = None
    labels: list[int] | None = None  # logistic, K classes: the class of each row of coef
    booster: Any = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Binary: (N,) P(positive); K classes: (N, K)."""
        from scipy.special import expit, softmax

        if self.booster is not None:
            out = np.asarray(self.booster.predict(x), dtype=np.float64)
            return out.reshape(-1) if self.binary else out.reshape(len(x), self.classes)
        assert self.coef is not None and self.intercept is not None
        z = x @ self.coef.T + self.intercept
        if self.binary:
            return expit(z[:, 0])
        probs = np.zeros((len(x), self.classes))
        probs[:, self.labels or list(range(self.classes))] = softmax(z, axis=1)
        return probs

    def decide(self, p: np.ndarray) -> np.ndarray:
        if self.binary:
            return (p >= (0.5 if self.threshold is None else self.threshold)).astype(np.int64)
        return p.argmax(axis=1).astype(np.int64)

    def to_dict(self, bundle: Path) -> dict[str, Any]:
        """What cascade.json keeps; a LightGBM model is written beside it."""
        doc: dict[str, Any] = {"kind": self.kind, "threshold": self.threshold, **self.info}
        if self.booster is not None:
            tmp = bundle / f".{LIGHTGBM_FILE}.tmp"
            tmp.write_text(self.booster.model_to_string())
            tmp.replace(bundle / LIGHTGBM_FILE)
            doc["file"] = LIGHTGBM_FILE
        else:
            assert self.coef is not None and self.intercept is not None
            doc |= {"coef": self.coef.tolist(), "intercept": self.intercept.tolist()}
            if self.labels is not None:
                doc["labels"] = self.labels
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any], bundle: Path, binary: bool, classes: int) -> MetaModel:
        kind = doc.get("kind")
        info = {k: v for k, v in doc.items() if k not in ("kind", "threshold", "coef", "intercept")}
        if kind == "lightgbm":
            check_kind(kind)
            import lightgbm

            from modelpress.deploy.bundle import member

            path = member(bundle, doc.get("file", LIGHTGBM_FILE), "the meta-model file")
            booster = lightgbm.Booster(model_str=path.read_text())
            return cls(kind, binary, classes, doc.get("threshold"), booster=booster, info=info)
        if kind != "logistic" or "coef" not in doc:
            raise MetaError(f"{bundle}: cascade.json describes no readable meta-model ({kind})")
        return cls(
            kind,
            binary,
            classes,
            doc.get("threshold"),
            coef=np.asarray(doc["coef"], dtype=np.float64),
            intercept=np.asarray(doc["intercept"], dtype=np.float64),
            labels=doc.get("labels"),
            info=info,
        )


def _fit_one(kind: str, x: np.ndarray, y: np.ndarray, binary: bool, classes: int, seed: int):
    if kind == "lightgbm":
        import lightgbm

        model = lightgbm.LGBMClassifier(
            n_estimators=150,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=10,
            random_state=seed,
            n_jobs=1,
            verbose=-1,
        )
        model.fit(x, y)
        return model
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(x, y)
    return model


def _proba(model: Any, x: np.ndarray, binary: bool, classes: int) -> np.ndarray:
    p = model.predict_proba(x)
    if binary:
        return p[:, list(model.classes_).index(1)] if 1 in model.classes_ else np.zeros(len(x))
    out = np.zeros((len(x), classes))
    out[:, [int(c) for c in model.classes_]] = p
    return out


def _best_f1_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The threshold of 0.01 … 0.99 with the highest F1 (ties: the one nearest 0.5)."""
    grid = np.arange(1, 100) / 100
    if not (y == 1).any():
        return 0.5
    pred = p[None, :] >= grid[:, None]
    tp = (pred & (y == 1)).sum(1)
    f1 = 2 * tp / np.maximum(pred.sum(1) + (y == 1).sum(), 1)
    best = np.flatnonzero(f1 == f1.max())
    return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])


def fit(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    deferred: np.ndarray,
    *,
    binary: bool,
    classes: int,
    confidence: float,
    names: list[str],
    seed: int = 0,
) -> MetaModel:
    """Fit on calibration features ``x`` and labels ``y``; ``deferred`` marks the items the
    meta-model decides (those reaching the last stage). The threshold and the figures come from
    out-of-fold scores; the model kept is fitted on all items."""
    from sklearn.model_selection import StratifiedKFold

    from modelpress.deploy.certify import clopper_pearson_upper
    from modelpress.evaluate.metrics import decision_metrics, roc_auc

    check_kind(kind)
    counts = np.bincount(y, minlength=2 if binary else classes)
    present = counts[counts > 0]
    if len(present) < 2:
        raise MetaError("the calibration split holds one class only: no meta-model can be fitted")
    folds = int(min(FOLDS, present.min()))
    if folds < 2:
        raise MetaError(
            "the calibration split has a class with a single item: out-of-fold scores for the "
            "meta-model need two at least per class"
        )
    oof = np.zeros(len(y)) if binary else np.zeros((len(y), classes))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = _fit_one(kind, x[train], y[train], binary, classes, seed)
        oof[test] = _proba(model, x[test], binary, classes)
    final = _fit_one(kind, x, y, binary, classes, seed)
    d = deferred
    info: dict[str, Any] = {"features": names, "folds": folds, "fitted_on": len(y)}
    if binary:
        threshold = _best_f1_threshold(oof[d], y[d]) if d.any() else 0.5
        decided = (oof >= threshold).astype(np.int64)
        pos = d & (y == 1)
        missed = int((pos & (decided == 0)).sum())
        info["out_of_fold"] = {
            "auc": roc_auc(y, oof),
            "deferred_items": int(d.sum()),
            "f1_deferred": decision_metrics(y[d], decided[d])["f1"] if d.any() else None,
            "positives_deferred": int(pos.sum()),
            "missed": missed,
            "miss_upper_bound": (
                clopper_pearson_upper(missed, int(pos.sum()), confidence) if pos.any() else None
            ),
            "says": "threshold chosen for the best F1 on out-of-fold scores of the deferred "
            "items; the miss rate's Clopper–Pearson bound is on those same scores",
        }
    else:
        threshold = None
        top = oof.argmax(1)
        info["out_of_fold"] = {
            "accuracy": float((top == y).mean()),
            "deferred_items": int(d.sum()),
            "accuracy_deferred": float((top[d] == y[d]).mean()) if d.any() else None,
        }
    if kind == "lightgbm":
        return MetaModel(kind, binary, classes, threshold, booster=final.booster_, info=info)
    labels = None if binary else [int(c) for c in final.classes_]
    coef, intercept = final.coef_, final.intercept_
    if not binary and len(final.classes_) == 2:  # sklearn gives one row for two classes
        coef, intercept = np.vstack([-coef, coef]) / 2, np.array([-intercept[0], intercept[0]]) / 2
    return MetaModel(
        kind,
        binary,
        classes,
        threshold,
        coef=np.asarray(coef, dtype=np.float64),
        intercept=np.asarray(intercept, dtype=np.float64),
        labels=labels,
        info=info,
    )


def describe(doc: dict[str, Any] | None) -> str:
    """One line for the terminal."""
    if not doc:
        return ""
    oof = doc.get("out_of_fold", {})
    parts = [f"meta-model: {doc['kind']} over {len(doc.get('features', []))} features"]
    if doc.get("threshold") is not None:
        parts.append(f"decides positive at p ≥ {doc['threshold']:.2f}")
    if oof.get("auc") is not None:
        parts.append(f"out-of-fold AUC {oof['auc']:.4f}")
    if oof.get("accuracy") is not None:
        parts.append(f"out-of-fold accuracy {oof['accuracy']:.4f}")
    if oof.get("miss_upper_bound") is not None:
        bound = oof["miss_upper_bound"]
        parts.append(
            f"misses {oof['missed']} of {oof['positives_deferred']} deferred positives "
            f"(bound {100 * bound:.3g} %)"
            if math.isfinite(bound)
            else ""
        )
    return "; ".join(p for p in parts if p)
