"""Text data (text:, jsonl:, csv:) tokenised with the model's own tokenizer, through a run."""

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from helpers.recipes import tiny_recipe
from modelpress.core.recipe import build_recipe
from modelpress.engine import pipeline
from modelpress.engine.context import build_context
from modelpress.errors import DataSourceError

transformers = pytest.importorskip("transformers")

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "ran",
    "on",
    "under",
    "mat",
    "log",
    "red",
    "blue",
    "small",
    "big",
    "quick",
    "slow",
    "alpha",
    "beta",
]


def _bert_folder(root: Path, labels: int = 2) -> Path:
    """A tiny BERT classifier and its WordPiece tokenizer, save_pretrained into one folder."""
    folder = root / "bert"
    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    ids = {w: i for i, w in enumerate(vocab)}
    transformers.BertTokenizerFast(vocab=ids).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, num_labels=labels,
    )  # fmt: skip
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def _sentences(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label): 'alpha' sentences against 'beta' ones, the rest of the words at random."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "alpha" if i % 2 else "beta"
        words = [*rng.sample(WORDS[:-2], rng.randint(3, 9)), label]
        rng.shuffle(words)
        out.append((" ".join(words), label))
    return out


def test_jsonl_and_csv_texts_tokenise_to_integer_inputs_with_named_labels(tmp_path: Path) -> None:
    folder = _bert_folder(tmp_path)
    rows = _sentences(60)
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"text": t, "y": y}) for t, y in rows))
    with (tmp_path / "d.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "label"])
        w.writerows(rows)
    seen = {}
    for source, data in (
        ("jsonl", {"source": f"jsonl:{tmp_path / 'd.jsonl'}", "label_column": "y"}),
        ("csv", {"source": f"csv:{tmp_path / 'd.csv'}", "text_column": "sentence"}),
    ):
        ctx, _ = build_context(build_recipe({"model": f"hf:{folder}", "data": data}))
        ids, mask = ctx.data.validation.inputs
        assert ids.dtype == mask.dtype == np.int64 and ids.shape == mask.shape
        assert ctx.data.class_names == ["alpha", "beta"] and ctx.data.num_classes == 2
        assert [s.name for s in ctx.input_specs] == ["input_ids", "attention_mask"]
        seen[source] = ids
    np.testing.assert_array_equal(seen["jsonl"], seen["csv"])  # the same texts, the same ids


def test_a_text_classifier_trains_and_exports_with_integer_inputs(tmp_path: Path) -> None:
    import onnx

    folder = _bert_folder(tmp_path)
    (tmp_path / "d.jsonl").write_text(
        "\n".join(json.dumps({"text": t, "label": y}) for t, y in _sentences(300))
    )
    from modelpress.engine.train import train_and_save
    from modelpress.training import TrainConfig

    data = f"jsonl:{tmp_path / 'd.jsonl'}"
    recipe = build_recipe({"model": f"hf:{folder}", "data": data})
    result, metrics = train_and_save(
        recipe, TrainConfig(epochs=4, lr=3e-3, batch_size=16), tmp_path / "b.pt"
    )
    assert metrics["top1"] >= 0.9, result.history  # 'alpha' or 'beta' decides it
    steps = [{"type": "export", "format": "onnx"}]
    run = tiny_recipe(str(tmp_path / "b.pt"), data=data, input_shape=None, steps=steps)
    record = pipeline.run(build_recipe(run), out=tmp_path / "run")
    onnx_entry = record["artifacts"][0]
    assert onnx_entry["status"] == "ok", onnx_entry["notes"]
    assert onnx_entry["metrics"]["top1"] >= 0.9
    graph = onnx.load(str(tmp_path / "run" / onnx_entry["path"])).graph
    int64 = onnx.TensorProto.INT64
    assert [i.type.tensor_type.elem_type for i in graph.input] == [int64, int64]


def test_text_without_a_tokenizer_or_with_half_its_labels_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("one line\nanother line\n" * 10)
    with pytest.raises(DataSourceError, match="text needs the model's tokenizer"):
        build_context(build_recipe({"model": "zoo:mlp", "data": f"text:{tmp_path / 't.txt'}"}))
    folder = _bert_folder(tmp_path)
    (tmp_path / "h.jsonl").write_text('{"text": "a cat", "label": 1}\n{"text": "a dog"}\n' * 6)
    with pytest.raises(DataSourceError) as err:
        build_context(
            build_recipe({"model": f"hf:{folder}", "data": f"jsonl:{tmp_path / 'h.jsonl'}"})
        )
    assert "example 2 has no 'label' while others do" in str(err.value)
