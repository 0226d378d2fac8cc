"""What a distillation with compare_scratch says when the teacher cost accuracy."""

from types import SimpleNamespace

from modelpress.steps.distill import DistillConfig, teacher_cost
from modelpress.tasks import get_task


def _ctx(validation_samples: int = 360) -> SimpleNamespace:
    return SimpleNamespace(
        task=get_task("classification"), data=SimpleNamespace(validation=range(validation_samples))
    )


def test_a_teacher_that_costs_accuracy_is_named_with_the_remedy() -> None:
    config = DistillConfig(student="zoo:dscnn", alpha=0.3, temperature=4.0)
    cost = teacher_cost(config, {"top1": 0.261}, {"top1": 0.808}, _ctx())
    assert cost is not None and cost["cost_pt"] == 54.7
    message = cost["message"]
    assert message.startswith("the teacher cost 54.70 pt of top1")
    assert "raise alpha (now 0.3)" in message and "lower the temperature (now 4.0)" in message
    assert "pretrain_epochs" in message


def test_remedies_already_taken_are_not_offered() -> None:
    config = DistillConfig(student="zoo:dscnn", alpha=0.9, temperature=2.0, pretrain_epochs=2)
    message = teacher_cost(config, {"top1": 0.70}, {"top1": 0.80}, _ctx())["message"]
    assert "alpha" not in message and "temperature" not in message
    assert "pretrain_epochs" not in message and "more epochs" in message


def test_no_verdict_when_the_teacher_helps_or_within_one_sample() -> None:
    config = DistillConfig(student="zoo:dscnn")
    assert teacher_cost(config, {"top1": 0.90}, {"top1": 0.85}, _ctx()) is None
    # 0.25 pt is less than one of 360 validation samples (0.28 pt): noise, not a verdict
    assert teacher_cost(config, {"top1": 0.8475}, {"top1": 0.85}, _ctx()) is None
