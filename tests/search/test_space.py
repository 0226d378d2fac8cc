"""A search space: checked against the registered steps, expanded into pipelines whose nodes
get ids from their lineage (shared prefixes share nodes), cheapest first."""

import re

import pytest

from modelpress.search.space import SpaceError, check, options, pipelines


def _ids(space: dict) -> list[list[str]]:
    return [[n.id for n in p.nodes] for p in pipelines(check(space))]


# ---------------------------------------------------------------- check


def test_an_unknown_step_type_suggests_the_close_name() -> None:
    with pytest.raises(SpaceError) as e:
        check({"prun": {"ratio": [0.3]}}, "r.yaml: optimize.space")
    assert "r.yaml: optimize.space.prun" in str(e.value)
    assert "did you mean prune?" in str(e.value)


def test_an_unknown_field_suggests_close_names_and_lists_the_fields() -> None:
    with pytest.raises(SpaceError) as e:
        check({"prune": {"ration": [0.3]}})
    message = str(e.value)
    assert "optimize.space.prune.ration" in message and "did you mean ratio" in message
    assert "finetune_epochs" in message  # its fields are listed


def test_an_empty_space_a_non_mapping_step_and_an_empty_list_are_refused() -> None:
    for space, fragment in (
        ({}, "optimize.space: empty"),
        (None, "optimize.space: empty"),
        ({"prune": 0.3}, "optimize.space.prune: give its fields as a mapping"),
        ({"prune": {"ratio": []}}, "optimize.space.prune.ratio: an empty list"),
    ):
        with pytest.raises(SpaceError, match=re.escape(fragment)):
            check(space)


def test_an_invalid_value_names_the_field_and_the_option() -> None:
    with pytest.raises(SpaceError) as e:
        check({"prune": {"ratio": [0.3, 1.5]}})
    assert "optimize.space.prune.ratio" in str(e.value)
    assert "1.5" in str(e.value)
    with pytest.raises(SpaceError) as e:
        check({"export": {"format": ["onnx"], "precision": ["fp32", "int4"]}})
    assert "optimize.space.export.precision" in str(e.value) and "int4" in str(e.value)


def test_single_values_become_lists() -> None:
    assert check({"prune": {"ratio": 0.3, "finetune_epochs": [1, 2]}}) == {
        "prune": {"ratio": [0.3], "finetune_epochs": [1, 2]}
    }


# ---------------------------------------------------------------- options


def test_none_and_a_prune_ratio_of_zero_leave_the_step_out_once() -> None:
    assert options({"ratio": [0, 0.3], "finetune_epochs": [2]}) == [
        None,
        {"ratio": 0.3, "finetune_epochs": 2},
    ]
    assert options({"student": ["none", None, "zoo:mlp"], "epochs": [1]}) == [
        None,
        {"student": "zoo:mlp", "epochs": 1},
    ]


def test_duplicate_options_are_removed() -> None:
    assert options({"ratio": [0.3, 0.3, 0.5]}) == [{"ratio": 0.3}, {"ratio": 0.5}]
    space = {"prune": {"ratio": [0, 0.3, 0.3]}, "export": {"precision": ["fp32", "fp32"]}}
    assert len(_ids(space)) == 2  # export; prune 0.3 → export


# ---------------------------------------------------------------- pipelines


def test_counts_of_pipelines() -> None:
    assert len(_ids({"export": {"format": ["onnx"], "precision": ["fp32", "fp16", "int8"]}})) == 3
    # (left out, 0.3, 0.5) × 3 precisions
    space = {"prune": {"ratio": [0, 0.3, 0.5]}, "export": {"precision": ["fp32", "fp16", "int8"]}}
    assert len(_ids(space)) == 9
    # the baseline alone (every step left out) is no pipeline: it is measured anyway
    assert len(_ids({"prune": {"ratio": [0, 0.3]}, "export": {"format": ["none", "onnx"]}})) == 3
    # (no student, a student) × (no prune, 0.5) × 2 precisions
    space = {
        "distill": {"student": ["none", "zoo:mlp"], "student_kwargs": [{"hidden": [16]}]},
        "prune": {"ratio": [0, 0.5]},
        "export": {"format": ["onnx"], "precision": ["fp32", "int8"]},
    }
    assert len(_ids(space)) == 8


def test_shared_prefixes_share_node_ids() -> None:
    space = {
        "prune": {"ratio": [0.3, 0.5], "finetune_epochs": 1},
        "export": {"format": ["onnx"], "precision": ["fp32", "fp16"]},
    }
    got = {p.describe(): p for p in pipelines(check(space))}
    assert len(got) == 4
    by_ratio: dict[float, set[str]] = {}
    for p in got.values():
        by_ratio.setdefault(p.choice["prune"]["ratio"], set()).add(p.nodes[0].id)
    # every pipeline pruning at 0.3 starts from one node; 0.5 from another
    assert all(len(ids) == 1 for ids in by_ratio.values())
    assert by_ratio[0.3] != by_ratio[0.5]
    # a node's parent is the node before it, the first one's the baseline
    for p in got.values():
        assert p.nodes[0].parent == "baseline"
        for before, node in zip(p.nodes, p.nodes[1:], strict=False):
            assert node.parent == before.id and node.step["from"] == before.id
    # the ids are the same in another expansion of the same space (a resumed search)
    assert _ids(space) == _ids(space)


def test_an_onnx_int8_or_fp16_export_starts_from_the_shared_fp32_onnx_node() -> None:
    ids = _ids({"export": {"format": ["onnx"], "precision": ["fp32", "int8", "fp16"]}})
    fp32, int8, fp16 = ids
    assert len(fp32) == 1 and fp32[0].startswith("onnx-fp32-")
    assert int8[0] == fp16[0] == fp32[0]  # the FP32 ONNX the candidate itself is, built once
    assert int8[1].startswith("onnx-int8-") and fp16[1].startswith("onnx-fp16-")
    # without an fp32 option the FP32 node is still put first, and shared
    int8, fp16 = _ids({"export": {"format": ["onnx"], "precision": ["int8", "fp16"]}})
    assert int8[0] == fp16[0] and int8[0].startswith("onnx-fp32-")


def test_export_without_a_format_shares_the_fp32_onnx_node() -> None:
    """``format`` left to its default (onnx): the FP32 candidate and the FP32 node an int8
    export starts from are the same computation, so one node (it was built twice)."""
    fp32, int8 = _ids({"export": {"precision": ["fp32", "int8"]}})
    assert int8[0] == fp32[0]
    assert len({*fp32, *int8}) == 2


def test_cheapest_first_no_training_then_fewer_training_steps_then_distillation() -> None:
    space = {
        "distill": {"student": ["none", "zoo:mlp"], "student_kwargs": [{"hidden": [16]}]},
        "prune": {"ratio": [0, 0.5]},
        "export": {"format": ["onnx"], "precision": ["fp32", "int8"]},
    }
    got = pipelines(check(space))
    trained = [p.trained for p in got]
    assert trained == sorted(trained) and trained[:2] == [0, 0]
    assert [p.describe().split(" → ")[0].split("(")[0] for p in got] == [
        "export",
        "export",
        "prune",
        "prune",
        "distill",
        "distill",
        "distill",
        "distill",
    ]
    # within the same cost, the space's order: fp32 before int8
    assert got[0].choice["export"]["precision"] == "fp32"
    assert got[1].choice["export"]["precision"] == "int8"
