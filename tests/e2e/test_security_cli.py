"""The CLI given hostile files: a checkpoint that names code to run, a step name that climbs out
of --out. Each is refused in one line (exit 2) before anything runs or is written."""

from pathlib import Path

import pytest
import torch
import yaml

from helpers.cli import assert_one_line_error, run_cli
from helpers.recipes import tiny_recipe

FAST = ("--repeats", "3", "--warmup", "0", "--batch-sizes", "1")


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_a_checkpoint_cannot_choose_what_code_runs(tmp_path: Path) -> None:
    meta = {"model": "subprocess:getoutput", "model_kwargs": {"cmd": "id > PWNED"}}
    torch.save({"modelpress": meta}, tmp_path / "evil.pt")
    result = run_cli("bench", "evil.pt", "--data", "builtin:digits", cwd=tmp_path)
    assert_one_line_error(result, "evil.pt", "'subprocess:getoutput'", "--trust-checkpoint-code")
    assert not (tmp_path / "PWNED").exists()
    assert _tree(tmp_path) == {"evil.pt"}


def test_a_factory_checkpoint_runs_once_the_user_names_or_trusts_the_factory(
    factory_file: Path, tmp_path: Path
) -> None:
    from modelpress.core.recipe import build_recipe
    from modelpress.engine.context import build_context, rebuild_info
    from modelpress.training import checkpoint_metadata, save_checkpoint

    factory = f"{factory_file}:build"
    ctx, base = build_context(build_recipe(tiny_recipe(factory)))
    ckpt = tmp_path / "net.pt"
    save_checkpoint(ckpt, base.module, checkpoint_metadata(ctx, rebuild_info(ctx.model_spec)))

    refused = run_cli("bench", str(ckpt), "--data", "builtin:digits", *FAST)
    assert_one_line_error(refused, f"'{factory}'", "--trust-checkpoint-code")
    trusted = run_cli(
        "bench", str(ckpt), "--data", "builtin:digits", "--trust-checkpoint-code", *FAST
    )
    assert trusted.returncode == 0, trusted.stderr
    named = run_cli("bench", factory, "--weights", str(ckpt), "--data", "builtin:digits", *FAST)
    assert named.returncode == 0, named.stderr


def test_every_command_that_loads_a_model_offers_the_trust_flag() -> None:
    import typer

    from modelpress.cli.app import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    names = ("run", "bench", "export", "quantize", "train", "distill", "prune", "compare")
    for name in (*names, "optimize", "video"):
        options = {opt for param in commands[name].params for opt in param.opts}
        assert "--trust-checkpoint-code" in options, name
    build = commands["cascade"].commands["build"]  # its stages are models the user names
    assert "--trust-checkpoint-code" in {opt for param in build.params for opt in param.opts}


@pytest.mark.parametrize("name", ["../../escape", "../../../../escape"])
def test_a_step_name_cannot_write_outside_out(tmp_path: Path, name: str) -> None:
    recipe = tiny_recipe("zoo:mlp", input_shape=None, steps=[{"type": "torchscript", "name": name}])
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    result = run_cli("run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "a" / "run"))
    assert_one_line_error(result, "steps.0.name", repr(name), "letters, digits")
    assert _tree(tmp_path) == {"r.yaml"}  # nothing written, inside --out or out of it
