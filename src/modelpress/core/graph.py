"""The recipe's steps as a graph: who starts from whom, in what order they run.

A step with ``from:`` depends on the steps it names (``baseline`` is the root); a step without
it takes the newest artifact before it in the recipe that it accepts, so it depends on every
step listed before it. Steps run in recipe order, except that one naming a later step waits
for it; a cycle is an error naming its steps.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from modelpress.core.registry import StepConfig

BASELINE = "baseline"


def wiring_errors(steps: Sequence[StepConfig]) -> list[str]:
    """One ``steps.N.field: message`` per problem with ids and ``from:`` (empty when sound)."""
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        ref = step.ref
        if ref == BASELINE:
            errors.append(f"steps.{i}.id: 'baseline' names the model the run starts from")
        elif ref in seen:
            errors.append(
                f"steps.{i}.id: '{ref}' is already the id of steps.{seen[ref]}; "
                "give one of them a distinct `id:`"
            )
        seen.setdefault(ref, i)
    known = [BASELINE, *seen]
    for i, step in enumerate(steps):
        sources = step.sources or []
        for source in sources:
            if source == step.ref:
                errors.append(f"steps.{i}.from: a step cannot start from itself ('{source}')")
            elif source not in known:
                close = difflib.get_close_matches(source, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                errors.append(
                    f"steps.{i}.from: '{source}' names no step{hint}; the ids are: "
                    f"{', '.join(known)}"
                )
        if len(sources) > step.max_inputs:
            errors.append(
                f"steps.{i}.from: `{step.type}` takes {step.max_inputs} input"
                f"{'s' if step.max_inputs > 1 else ''}; name one of {', '.join(sources)}"
            )
    if not errors:
        try:
            run_order(steps)
        except ValueError as e:
            errors.append(str(e))
    if not errors:  # the ids and the order sound: what each step would be handed
        errors.extend(e for i in range(len(steps)) for e in _misfits(steps, i, seen))
    return errors


def _misfits(steps: Sequence[StepConfig], i: int, index: dict[str, int]) -> list[str]:
    """``from:`` naming a step whose artifact, as its config says, this step cannot take (a
    prune from an ONNX export): found when the recipe is read, not after the baseline."""
    step, errors = steps[i], []
    for source in step.sources or []:
        j = index.get(source)
        made = steps[j].makes() if j is not None and source != step.ref else None
        if made is None or any(t.takes_made(made) for t in step.takes()):
            continue
        errors.append(
            f"steps.{i}.from: `{step.type}` takes {step.wants()}, but '{source}' (steps.{j}, "
            f"`{steps[j].type}`) makes {made.describe()}; start it from a step that makes one "
            "(or baseline)"
        )
    return errors


def depends_on(steps: Sequence[StepConfig], index: int) -> list[int]:
    """The indices of the steps step ``index`` waits for."""
    step = steps[index]
    if step.sources is None:
        return list(range(index))
    where = {s.ref: i for i, s in enumerate(steps)}
    return [where[s] for s in step.sources if s in where]


def run_order(steps: Sequence[StepConfig]) -> list[int]:
    """Step indices in the order they run: recipe order, a step naming a later one after it."""
    waits = {i: set(depends_on(steps, i)) for i in range(len(steps))}
    done: list[int] = []
    while len(done) < len(steps):
        ready = [i for i in range(len(steps)) if i not in done and waits[i] <= set(done)]
        if not ready:
            stuck = [steps[i].ref for i in range(len(steps)) if i not in done]
            cycle = [steps[i].ref for i in _cycle(waits, [i for i in waits if i not in done])]
            raise ValueError(
                f"steps.from: the steps {' → '.join([*cycle, cycle[0]])} start from each other "
                f"(a cycle; {len(stuck)} step(s) cannot run); make one of them start from "
                "baseline or an earlier step"
            )
        done.append(ready[0])
    return done


def _cycle(waits: dict[int, set[int]], left: list[int]) -> list[int]:
    """A cycle among the steps that cannot run (follow waits until a step repeats)."""
    path, at = [], left[0]
    while at not in path:
        path.append(at)
        at = min(w for w in waits[at] if w in left)
    return path[path.index(at) :]
