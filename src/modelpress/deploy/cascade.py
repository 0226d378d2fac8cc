"""A cascade: cheap stages decide the items they are sure of, the last stage (or a meta-model)
the rest.

Each stage is a deployed file run in its own runtime: ``cascade build`` takes any model source
the user names and puts a deployed file in the bundle (a torch model traced to TorchScript; an
``.onnx``, ``.tflite``, OpenVINO ``.xml``, ``.pt2`` or TorchScript file as it is). Building one:

1. every stage's scores on the calibration split, as the cascade's Task reads its outputs
   (``Task.cascade_scores``; binary: the log-odds of the positive class; classification: its K
   logits), temperature-scaled (``calibration.fit_temperature``);
2. each early stage's exits chosen by the Task's exit rule (``Task.cascade_exit``,
   ``deploy/exits.py``) over a grid fixed in advance so that an exact binomial bound holds, on
   the calibration items that reach it:

   - binary: two thresholds (exit negative below ``low``, positive at or above ``high``, defer
     the band); the bound is on *leakage*, the share of positives exiting negative
     (``certify.choose_thresholds``);
   - classification: one threshold on the Task's ``confidence`` in its answer (the top class's
     probability); the bound is on the early exits' error rate, or with positive classes on
     the share of their items exiting as another class (``certify.choose_confidence_threshold``);
   - with buckets (``entropy:B`` — the stage's predictive entropy — or ``quality:B`` — the input's
     sharpness, the variance of its Laplacian), each of B bins (quantiles on calibration) gets a
     certificate of its own at confidence ``1 − (1 − c) / B``; a bin too small to certify
     defers everything.

   With several early stages the budget is split (a union bound: ``max_leakage / k`` at
   confidence ``1 − (1 − confidence) / k`` each), so the cascade's leakage is certified at
   ``max_leakage`` and ``confidence`` overall;
3. the last stage decides everything left (the Task's ``decisions``: P(positive) ≥ 0.5, or
   the top class), unless a meta-model (``deploy/meta.py``) is asked for: it scores every item
   from the stages' scores and which stages ran, and decides the items that reach the end.

Where each part lives: ``stage.py`` (a stage, read through the Task), ``exits.py`` (the exit
rules and their certificates), ``routing.py`` (scores, buckets, routes), ``runner.py`` (the
``Cascade``: predict, save, load), ``bundle.py`` and ``evidence.py`` (bundle I/O and its
checks), ``models.py`` (the models a user names), ``build.py``, ``evaluation.py``. This module
gathers the names a user imports.

The bundle is a directory: the stage files, ``cascade.json`` (temperatures, thresholds, the
certificates, the meta-model, what was measured) and the calibration evidence. ``Cascade.load``
runs it again, once ``deploy/bundle.py`` and ``deploy/evidence.py`` have checked that it is what
its build wrote: a bundle travels between people, and nothing in it chooses code to run.
"""

from __future__ import annotations

from modelpress.deploy.build import build
from modelpress.deploy.bundle import BUNDLE_FILE
from modelpress.deploy.evaluation import evaluate, whole
from modelpress.deploy.models import open_model, open_stage
from modelpress.deploy.routing import (
    BUCKET_KINDS,
    MAX_BUCKETS,
    CascadeError,
    bucket_scores,
    entropy,
    parse_buckets,
    sharpness,
)
from modelpress.deploy.runner import Cascade
from modelpress.deploy.stage import Routed, Stage

__all__ = [
    "BUCKET_KINDS",
    "BUNDLE_FILE",
    "MAX_BUCKETS",
    "Cascade",
    "CascadeError",
    "Routed",
    "Stage",
    "bucket_scores",
    "build",
    "entropy",
    "evaluate",
    "open_model",
    "open_stage",
    "parse_buckets",
    "sharpness",
    "whole",
]
