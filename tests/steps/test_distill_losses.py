"""Distillation loss math against hand-computed values, the α schedule, feature projections."""

import math

import pytest
import torch

from modelpress.errors import StepError
from modelpress.steps.distill.features import FeatureDistiller, parse_pairs
from modelpress.steps.shared import alpha_at
from modelpress.tasks.losses import binary_kd_loss, kd_loss
from modelpress.zoo import get


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


@pytest.mark.parametrize(("temperature", "alpha"), [(1.0, 0.5), (2.0, 0.3), (4.0, 0.0)])
def test_kd_loss_matches_hand_computation(temperature: float, alpha: float) -> None:
    s, t = [1.0, 0.0, -1.0], [0.0, 2.0, 0.5]
    hard = -math.log(_softmax(s)[0])  # label 0
    p_s = _softmax([v / temperature for v in s])
    p_t = _softmax([v / temperature for v in t])
    expected = alpha * hard + (1 - alpha) * temperature**2 * _kl(p_t, p_s)
    got = kd_loss(
        torch.tensor([s]), torch.tensor([t]), torch.tensor([0]), temperature, alpha, 1 - alpha
    )
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_kd_loss_with_the_teachers_own_logits_is_the_hard_loss() -> None:
    logits, labels = torch.randn(8, 10), torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert kd_loss(logits, logits, labels, 4.0, 0.3, 0.7).item() == pytest.approx(
        0.3 * ce.item(), rel=1e-5
    )


def test_binary_kd_loss_matches_hand_computation() -> None:
    s, t, y, temp, alpha = 0.5, 2.0, 1, 2.0, 0.4
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    hard = -math.log(sig(s))
    p_t, p_s = sig(t / temp), sig(s / temp)
    kl = _kl([p_t, 1 - p_t], [p_s, 1 - p_s])
    expected = alpha * hard + (1 - alpha) * temp**2 * kl
    got = binary_kd_loss(
        torch.tensor([[s]]), torch.tensor([[t]]), torch.tensor([y]), temp, alpha, 1 - alpha
    )
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_progressive_alpha_per_epoch() -> None:
    values = [alpha_at(e, 0.9, 0.1, 5) for e in range(7)]
    assert values == pytest.approx([0.9, 0.7, 0.5, 0.3, 0.1, 0.1, 0.1])
    assert alpha_at(0, 0.9, 0.1, 1) == 0.1


def _pair_models() -> tuple[torch.nn.Module, torch.nn.Module, list[torch.Tensor]]:
    teacher = get("resnet_tiny").factory(num_classes=10, in_channels=1)
    student = get("dscnn").factory(num_classes=10, in_channels=1, width_mult=0.5)
    return teacher.eval(), student, [torch.randn(4, 1, 32, 32)]


def test_feature_projections_map_student_to_teacher_shapes() -> None:
    teacher, student, example = _pair_models()
    pairs = parse_pairs(["layer2:blocks.1", "fc:classifier"], "distill")
    feats = FeatureDistiller(teacher, student, pairs, example, weight=0.5)
    (s_conv, t_conv), (s_vec, t_vec) = feats.shapes
    assert len(s_conv) == 4 and len(t_conv) == 4 and s_vec == t_vec == (4, 10)
    proj = feats.projections[0]
    assert isinstance(proj, torch.nn.Conv2d) and proj.kernel_size == (1, 1)
    assert (proj.in_channels, proj.out_channels) == (s_conv[1], t_conv[1])
    assert isinstance(feats.projections[1], torch.nn.Linear)
    with torch.no_grad():
        teacher(*example)
    student(*example)
    loss = feats.loss()
    loss.backward()
    assert torch.isfinite(loss) and proj.weight.grad is not None
    projected = feats.project(0, torch.randn(*s_conv), torch.randn(*t_conv))
    assert tuple(projected.shape) == t_conv
    feats.remove()


def test_unknown_feature_layer_lists_close_names() -> None:
    teacher, student, example = _pair_models()
    with pytest.raises(StepError, match=r"student has no layer 'blocks\.9'; close names: blocks"):
        FeatureDistiller(teacher, student, [("layer2", "blocks.9")], example, 1.0)
    with pytest.raises(StepError, match="not TEACHER_LAYER:STUDENT_LAYER"):
        parse_pairs(["layer2"], "distill")


def test_standardized_kd_matches_relations_not_scale() -> None:
    """A student whose logits are the teacher's scaled down by 10 (same ranking, same relations)
    owes the teacher nothing once logits are standardized, and a lot without it."""
    teacher = torch.tensor([[9.0, 1.0, -3.0, 0.5], [-2.0, 6.0, 1.0, 0.0]])
    student = teacher / 10 + 0.7  # another scale and offset
    labels = torch.tensor([0, 1])
    raw = kd_loss(student, teacher, labels, 4.0, 0.0, 1.0)
    standardized = kd_loss(student, teacher, labels, 4.0, 0.0, 1.0, standardize=True)
    assert raw > 0.5
    assert standardized == pytest.approx(0.0, abs=1e-5)
    # relations that differ still cost: swap the student's two best classes
    swapped = student[:, [1, 0, 2, 3]]
    assert kd_loss(swapped, teacher, labels, 4.0, 0.0, 1.0, standardize=True) > 0.1
    # the hard-label term is on the raw logits either way
    assert kd_loss(student, teacher, labels, 4.0, 1.0, 0.0, standardize=True) == pytest.approx(
        kd_loss(student, teacher, labels, 4.0, 1.0, 0.0)
    )
