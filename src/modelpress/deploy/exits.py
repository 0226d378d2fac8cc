"""How a cascade's early stages exit, by the rule its Task names (``Task.cascade_exit``).

- ``thresholds`` (a task answering with one probability per item, binary): exit negative below
  ``low``, positive at or above ``high``, defer the band; the certificate bounds *leakage*, the
  share of the positive class exiting negative (``certify.choose_thresholds``);
- ``confidence`` (one answer among K classes): exit with the task's answer where its
  ``confidence`` reaches one threshold; the certificate bounds the early exits' error rate, or
  with positive classes the share of their items exiting as another class
  (``certify.choose_confidence_threshold``).

A rule knows which classes a cascade guards (``guard``), how to certify a stage or one bin of
it (``certify``, ``bucketed``), and how to name its decisions. The cascade asks its Task for
the rule; nothing here asks which task it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelpress.deploy.certify import TOP_CONFIDENCE, TWO_THRESHOLDS
from modelpress.deploy.routing import CascadeError, bucket_scores

if TYPE_CHECKING:
    from modelpress.tasks.base import Task

BINARY_CLASSES = ["negative", "positive"]  # a two-class bundle's decisions, when it names none


class ExitRule(ABC):
    name: ClassVar[str]  # what ``Task.cascade_exit`` names
    kind: ClassVar[str]  # the certificates it writes (``certify.Certificate.kind``)
    one_probability: ClassVar[bool]  # the answer is P(positive) per item, not one of K classes

    @abstractmethod
    def guard(self, positive: list[str] | None, dataset: Any, data: str) -> dict[str, Any]:
        """The classes the cascade guards, as cascade.json keeps them (``positive``: the
        user's --positive, names or indices)."""

    def flips(self, doc: dict[str, Any]) -> bool:
        """Whether the positive class is the model's class 0 (its scores and labels flip)."""
        return False

    def guarded(self, doc: dict[str, Any]) -> list[int] | None:
        """The classes (as the cascade counts labels) whose items' exits the bound counts, or
        None: every early exit's error counts."""
        return None

    @abstractmethod
    def measure(self, guard: dict[str, Any]) -> str:
        """What the bound counts, in words."""

    def positives(self, y: np.ndarray) -> int | None:
        """The calibration items the whole cascade's bound is on, where there is one count."""
        return None

    def class_names(self, doc: dict[str, Any]) -> list[str]:
        """The name of each decision the cascade gives."""
        return [str(c) for c in doc.get("classes") or []]

    @abstractmethod
    def certify(
        self,
        probs: np.ndarray,
        y: np.ndarray,
        *,
        max_leakage: float,
        confidence: float,
        positive_classes: list[int] | None,
        max_false_alarm: float | None,
    ) -> dict[str, Any]:
        """The certificate (``cascade.json``'s ``certificate``) of thresholds chosen on the
        calibration items' ``probs`` and labels ``y``."""

    def defer_everything(
        self, y: np.ndarray, max_leakage: float, confidence: float, why: str
    ) -> dict[str, Any]:
        """A certificate under which nothing exits (so nothing leaks), for a bin too small."""
        return {
            "kind": self.kind,
            "low": None,
            "high": None,
            "positives": 0,
            "passed": 0,
            "upper_bound": 0.0,
            "max_leakage": max_leakage,
            "confidence": confidence,
            "certified": True,
            "items": len(y),
            "deferred_share": 1.0,
            "exit_share": 0.0,
            "note": f"everything deferred: {why}",
        }

    def bucketed(
        self,
        kind: str,
        count: int,
        probs: np.ndarray,
        inputs: list[np.ndarray],
        y: np.ndarray,
        *,
        max_leakage: float,
        confidence: float,
        positive_classes: list[int] | None,
        max_false_alarm: float | None,
    ) -> dict[str, Any]:
        """A certificate per bin of ``kind`` (quantiles of the calibration items reaching the
        stage), each at confidence ``1 − (1 − confidence) / count``: all hold together at
        ``confidence``. A bin too small to certify defers everything."""
        from modelpress.deploy.certify import CertificationError

        score = bucket_scores(kind, probs, inputs)
        edges = np.unique(np.quantile(score, np.linspace(0, 1, count + 1)[1:-1])).tolist()
        ids = np.digitize(score, edges)
        each = 1 - (1 - confidence) / (len(edges) + 1)
        certs = []
        for b in range(len(edges) + 1):
            mask = ids == b
            try:
                cert = self.certify(
                    probs[mask],
                    y[mask],
                    max_leakage=max_leakage,
                    confidence=each,
                    positive_classes=positive_classes,
                    max_false_alarm=max_false_alarm,
                )
            except CertificationError as e:
                cert = self.defer_everything(y[mask], max_leakage, each, str(e))
            cert["items"] = int(mask.sum())
            certs.append(cert)
        return {"by": kind, "edges": edges, "confidence_each": each, "certificates": certs}


class Thresholds(ExitRule):
    name = "thresholds"
    kind = TWO_THRESHOLDS
    one_probability = True

    def guard(self, positive: list[str] | None, dataset: Any, data: str) -> dict[str, Any]:
        names, index = _classes(dataset, data)
        if len(names) != 2:
            raise CascadeError(
                f"{data} has {len(names)} classes and a binary cascade needs two; use --task "
                "classification (with --positive for the classes to guard)"
            )
        if positive and len(positive) > 1:
            raise CascadeError("--positive: a binary cascade has one positive class; give it once")
        at = index(positive[0]) if positive else 1
        return {"classes": names, "positive": [names[at]], "positive_index": at}

    def flips(self, doc: dict[str, Any]) -> bool:
        return doc.get("positive_index") == 0

    def guarded(self, doc: dict[str, Any]) -> list[int] | None:
        return [1]  # labels as the cascade counts them: 1 is the positive class

    def measure(self, guard: dict[str, Any]) -> str:
        return f"leakage: items of class {guard['positive'][0]} exiting early as negative"

    def positives(self, y: np.ndarray) -> int | None:
        return int((y == 1).sum())

    def class_names(self, doc: dict[str, Any]) -> list[str]:
        """Decision 1 is the positive class, which ``positive_index`` may put first."""
        classes = super().class_names(doc)
        if len(classes) != 2:
            return list(BINARY_CLASSES)
        return classes[::-1] if self.flips(doc) else classes

    def certify(
        self,
        probs: np.ndarray,
        y: np.ndarray,
        *,
        max_leakage: float,
        confidence: float,
        positive_classes: list[int] | None,
        max_false_alarm: float | None,
    ) -> dict[str, Any]:
        from modelpress.deploy.certify import choose_thresholds

        cert = choose_thresholds(
            probs,
            y,
            max_leakage=max_leakage,
            confidence=confidence,
            max_false_alarm=max_false_alarm,
        )
        return cert.to_dict()

    def defer_everything(
        self, y: np.ndarray, max_leakage: float, confidence: float, why: str
    ) -> dict[str, Any]:
        return super().defer_everything(y, max_leakage, confidence, why) | {
            "low": 0.0,
            "positives": int((y == 1).sum()),
        }


class TopConfidence(ExitRule):
    name = "confidence"
    kind = TOP_CONFIDENCE
    one_probability = False

    def guard(self, positive: list[str] | None, dataset: Any, data: str) -> dict[str, Any]:
        names, index = _classes(dataset, data)
        chosen = sorted({index(v) for v in positive or []})
        return {
            "classes": names,
            "positive": [names[i] for i in chosen] or None,
            "positive_classes": chosen or None,
        }

    def guarded(self, doc: dict[str, Any]) -> list[int] | None:
        return doc.get("positive_classes") or None

    def measure(self, guard: dict[str, Any]) -> str:
        if guard.get("positive"):
            return f"items of {', '.join(guard['positive'])} exiting early as another class"
        return "errors among early exits"

    def certify(
        self,
        probs: np.ndarray,
        y: np.ndarray,
        *,
        max_leakage: float,
        confidence: float,
        positive_classes: list[int] | None,
        max_false_alarm: float | None,
    ) -> dict[str, Any]:
        from modelpress.deploy.certify import choose_confidence_threshold

        cert = choose_confidence_threshold(
            probs,
            y,
            max_error=max_leakage,
            confidence=confidence,
            positive_classes=positive_classes,
        )
        return cert.to_dict()


RULES: dict[str, ExitRule] = {r.name: r for r in (Thresholds(), TopConfidence())}


def summary(buckets: dict[str, Any]) -> dict[str, Any]:
    """A bucketed stage's certificate as one: the worst bin's bound holds for the mixture."""
    certs = buckets["certificates"]
    items = sum(c["items"] for c in certs) or 1
    return {
        "kind": certs[0]["kind"],
        "low": None,
        "high": None,
        "bucketed": f"{len(certs)} bins of {buckets['by']}",
        "positives": sum(c["positives"] for c in certs),
        "passed": sum(c["passed"] for c in certs),
        "upper_bound": max(c["upper_bound"] for c in certs),
        "max_leakage": certs[0]["max_leakage"],
        "confidence": certs[0]["confidence"],
        "certified": all(c["certified"] for c in certs),
        "items": items,
        "deferred_share": sum(c["deferred_share"] * c["items"] for c in certs) / items,
        "measure": certs[0].get("measure", ""),
    }


def _classes(dataset: Any, data: str) -> tuple[list[str], Any]:
    """(the data's class names, a function from a --positive value to its class index)."""
    k = dataset.num_classes or 2
    names = list(dataset.class_names or [str(i) for i in range(k)])

    def index(value: str) -> int:
        if value in names:
            return names.index(value)
        if value.lstrip("-").isdigit() and 0 <= int(value) < k:
            return int(value)
        raise CascadeError(
            f"--positive {value}: {data} has no such class; its classes are {', '.join(names)}"
        )

    return names, index


def cascade_task(name: str | None, where: str | None = None) -> tuple[Task, ExitRule]:
    """The task a cascade runs (``name``; None: the task a cascade runs by default) and its
    exit rule; one line naming ``where`` it was asked (None: ``--task``) when it is no task or
    one that runs in no cascade."""
    from modelpress.tasks import CASCADE_TASK, find_task

    name = name or CASCADE_TASK
    task = find_task(name)
    rule = RULES.get(getattr(task, "cascade_exit", None) or "")
    if task is None or rule is None:
        said = f"--task {name}" if where is None else f"{where}: task {name!r}"
        raise CascadeError(f"{said}: a cascade runs {' or '.join(_cascade_task_names())}")
    return task, rule


def _cascade_task_names() -> list[str]:
    from modelpress.tasks import find_task, task_names

    return [n for n in task_names() if getattr(find_task(n), "cascade_exit", None) in RULES]


def rule_of(doc: dict[str, Any]) -> ExitRule | None:
    """The exit rule of a cascade.json's task, or None where it names no task that runs in a
    cascade (for readers that show what they can, never raising on a field)."""
    from modelpress.tasks import CASCADE_TASK, find_task

    name = doc.get("task", CASCADE_TASK)
    task = find_task(name) if isinstance(name, str) else None
    return RULES.get(getattr(task, "cascade_exit", None) or "")
