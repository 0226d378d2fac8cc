"""The checks of a recipe's steps that need the data and the built model but no model run,
made after the context is built and before the baseline is measured: each of them used to fail
its step only after the baseline (18–72 s of work) and be recorded as a failed step.

- wiring: a step's input, as far as the configs say what each step makes (``StepConfig.makes``;
  an explicit ``from:`` between steps is checked when the recipe is read, ``core/graph``): the
  baseline named by ``from:`` that the step cannot take, or no earlier node it could take;
- each step's own ``check_before_run``: model sources built (trusted, their arguments and
  weights taken), flags parsed, layer names looked up in the built models.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelpress.core.artifact import Artifact
from modelpress.core.graph import BASELINE
from modelpress.core.registry import StepConfig, Takes, describe_artifact
from modelpress.engine.context import Context
from modelpress.errors import StepError


def check_steps(steps: Sequence[StepConfig], ctx: Context, baseline: Artifact) -> None:
    """Raise the first problem (a ModelpressError naming the step) of ``steps`` that shows
    before any model runs."""
    for index, config in enumerate(steps):
        where = config.display_name
        parent = _known_input(steps, index, baseline, where)
        config.check_before_run(ctx, baseline if parent == BASELINE else None, where)


def _known_input(
    steps: Sequence[StepConfig], index: int, baseline: Artifact, where: str
) -> str | None:
    """The node step ``index`` starts from when the configs tell (the baseline or a step's
    ref), None when only the run can tell; an input it cannot take is a StepError."""
    config = steps[index]
    if config.sources is not None:
        if BASELINE in config.sources and not config.accepts(baseline):
            raise StepError(
                f"{where}: `{config.type}` takes {config.wants()}; {describe_artifact(baseline)}"
                " (from: baseline)"
            )
        return BASELINE if config.sources == [BASELINE] else None
    candidates: list[tuple[str, Takes | None]] = [(BASELINE, None)]
    candidates += [(s.ref, s.makes()) for s in steps[:index]]
    seen = []
    for ref, made in reversed(candidates):  # the newest node it accepts, as the runner picks
        if ref == BASELINE:
            if config.accepts(baseline):
                return BASELINE
            seen.append(describe_artifact(baseline))
            continue
        if made is None:
            return None  # only the run can tell what this step makes
        if any(t.takes_made(made) for t in config.takes()):
            return ref
        seen.append(f"`{ref}` makes {made.describe()}")
    raise StepError(
        f"{where}: needs {config.wants()}, and the run has none ({'; '.join(reversed(seen))}); "
        "add a step that makes one before it, or remove it"
    )
