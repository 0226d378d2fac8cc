"""A built cascade: its stages in their runtimes, run item by item through the exits.

``Cascade.load`` opens a bundle once ``deploy/bundle.py`` and ``deploy/evidence.py`` have
checked that it is what its build wrote; ``predict`` sends a batch through the stages, each
early stage deciding the items its certificate lets exit, the last stage (or a meta-model)
the rest; ``save`` writes cascade.json sealed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpress.deploy.exits import cascade_task
from modelpress.deploy.stage import Routed, Stage

if TYPE_CHECKING:
    from modelpress.deploy.exits import ExitRule
    from modelpress.tasks.base import Task


class Cascade:
    def __init__(
        self,
        stages: list[Stage],
        meta: dict[str, Any],
        dataset: Any = None,
        meta_model: Any = None,
    ) -> None:
        self.stages, self.meta = stages, meta
        self.dataset = dataset  # the data as the stages loaded it (``load``'s ``data``)
        # the first stage's inputs, float N,C,H,W as the data gives them (set by ``load``)
        self.inputs: list[Any] | None = dataset.input_specs() if dataset is not None else None
        self.meta_model = meta_model  # deploy/meta.MetaModel or None
        self.task: Task
        self.rule: ExitRule
        self.task, self.rule = cascade_task(meta.get("task"), where="cascade.json")

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """The data's labels as the cascade counts them (binary: 1 = the positive class)."""
        y = np.asarray(labels).astype(np.int64)
        return 1 - y if self.rule.flips(self.meta) else y

    # ------------------------------------------------------------------ running
    def predict(self, inputs: list[np.ndarray]) -> Routed:
        from modelpress.deploy.meta import features

        n, last = len(inputs[0]), len(self.stages) - 1
        one = self.rule.one_probability  # P(positive) per item, or K class probabilities
        decision = np.zeros(n, dtype=np.int64)
        stage = np.full(n, last, dtype=np.int64)
        final: np.ndarray | None = None
        seen: list[np.ndarray] = []  # every stage's probabilities, 0 where it did not run
        ran = np.zeros((n, len(self.stages)), dtype=bool)
        left = np.arange(n)
        for i, st in enumerate(self.stages):
            if not len(left):
                seen.append(seen[-1] * 0 if seen else np.zeros(n))
                continue
            sub = [a[left] for a in inputs]
            probs, route = st.decide(sub)  # the last stage (no certificate) decides all left
            if final is None:
                final = np.zeros((n, *probs.shape[1:]))
            mine = np.zeros((n, *probs.shape[1:]))
            mine[left], ran[left, i] = probs, True
            seen.append(mine)
            done = route >= 0
            final[left[done]], decision[left[done]] = probs[done], route[done]
            stage[left[done]] = i
            left = left[~done]
        if final is None:  # no items
            final = np.zeros(n) if one else np.zeros((n, 0))
        changed = None
        if self.meta_model is not None and n:
            mp = self.meta_model.predict(features(seen, ran, one))
            reach = stage == last
            own = decision[reach]
            decision[reach] = self.meta_model.decide(mp[reach])
            changed = int((own != decision[reach]).sum())
            final = mp
        if one:
            return Routed(final, decision, stage, meta_changed=changed)
        p = final[np.arange(n), decision] if n else np.zeros(0)
        return Routed(p, decision, stage, probs=final, meta_changed=changed)

    @property
    def threads(self) -> int:
        """The threads its stages run at (the most any stage's runtime was given)."""
        return max((st.runtime.threads for st in self.stages if st.runtime is not None), default=1)

    def warm_up(self) -> None:
        """One blank item through every stage (each stage's first run, lazy imports), so a
        timed run starts warm."""
        blank = [np.zeros((1, *s.shape[1:]), s.dtype or np.float32) for s in self.inputs or []]
        for st in self.stages if blank else []:
            st.scores(blank)

    def close(self) -> None:
        for st in self.stages:
            if st.runtime is not None:
                st.runtime.close()

    # ------------------------------------------------------------------ bundle
    def save(self, bundle: Path) -> None:
        """cascade.json, sealed (``deploy/bundle.write_doc``)."""
        from modelpress.deploy.bundle import write_doc

        doc = {
            **{k: v for k, v in self.meta.items() if k not in ("meta_model", "integrity")},
            "stages": [
                {
                    "name": s.name,
                    "file": s.file,
                    "temperature": s.temperature,
                    "calibration": s.calibration,
                    "certificate": s.certificate,
                    "buckets": s.buckets,
                }
                for s in self.stages
            ],
            "meta_model": (
                self.meta_model.to_dict(bundle) if self.meta_model is not None else None
            ),
        }
        self.meta["meta_model"] = doc["meta_model"]
        write_doc(bundle, doc)

    @classmethod
    def load(
        cls,
        bundle: Path | str,
        data: str | None = None,
        threads: int | None = None,
        with_data: bool = True,
    ) -> Cascade:
        """The cascade in ``bundle``, each stage in its runtime (``data``: a source whose inputs
        fit the stages; default the one it was built on). ``with_data=False`` and no ``data``:
        no data is loaded (scoring new inputs needs only the stages' input shape).

        Before any stage opens, the bundle is checked as one received from someone else
        (``deploy/bundle.py``): every file it names lies inside it with the digest it was built
        with, cascade.json is as it was sealed, and every certificate is recounted from the
        calibration evidence (``deploy/evidence.py``). Any mismatch is one line."""
        from modelpress.deploy import evidence
        from modelpress.deploy.bundle import (
            check_integrity,
            input_specs,
            member,
            open_stage_file,
            read_doc,
            stages_of,
        )
        from modelpress.deploy.meta import MetaModel

        bundle = Path(bundle)
        doc = read_doc(bundle)
        check_integrity(bundle, doc)
        stages, _, rule = stages_of(bundle, doc)
        evidence.verify(bundle, doc, stages, evidence.read(member(bundle, doc["evidence"], "")))
        specs = input_specs(bundle, doc)
        dataset = None
        if with_data or data:
            from modelpress.core.recipe import DataConfig
            from modelpress.engine.context import load_configured_data

            dataset = load_configured_data(DataConfig(source=data or doc["data"]), specs)
            specs = specs or dataset.input_specs()
        try:
            for st in stages:
                path = member(bundle, st.file, "stage file")
                st.runtime, file_specs = open_stage_file(path, threads, specs)
                specs = specs or file_specs
            meta_model = None
            if doc.get("meta_model"):
                classes = len(doc.get("classes") or []) or 2
                meta_model = MetaModel.from_dict(
                    doc["meta_model"], bundle, rule.one_probability, classes
                )
        except BaseException:
            for st in stages:
                if st.runtime is not None:
                    st.runtime.close()
            raise
        meta = {k: v for k, v in doc.items() if k != "stages"}
        cascade = cls(stages, meta, dataset, meta_model)
        cascade.inputs = specs
        return cascade
