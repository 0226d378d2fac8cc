"""Model sources → an ``nn.Module`` in eval mode, with clear errors for every way it can fail.

``zoo:NAME``                   our reference architectures (+ model_kwargs)
``package.module:factory``     an importable factory
``path/to/file.py:factory``    a factory in a file
``file.pt``                    a checkpoint written by ``modelpress train`` (rebuilds itself:
                               a zoo model freely, a factory only as the user allows, see
                               ``core/trust.py``), or a whole TorchScript module
``file.pt2``                   a ``torch.export`` ExportedProgram
``file.onnx`` / ``file.tflite``  a deployed model, evaluated and benchmarked in its runtime
Weights (``--weights``) may be a plain ``torch.save(model.state_dict())`` file, a
``modelpress train`` checkpoint, a dict holding ``state_dict``, or ``.safetensors``.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import importlib.util
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelpress.core.process import import_path
from modelpress.core.trust import CodeTrust, factory_key
from modelpress.errors import ModelSourceError, first_line
from modelpress.sources.memory import held

CHECKPOINT_KEY = "modelpress"  # metadata key in checkpoints written by `modelpress train`


@dataclass
class ModelSpec:
    """What a model source says before anything is built (enough to plan input shapes)."""

    source: str
    kind: str  # zoo | factory | checkpoint | torchscript | exported | hf | memory
    kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # from a modelpress checkpoint
    default_input_shape: tuple[int, ...] | None = None  # without batch (zoo entries)
    input_kind: str | None = None  # image | vector (zoo entries)

    @property
    def architecture(self) -> str:
        """What builds the module: the source itself, or what a checkpoint recorded."""
        return self.metadata.get("model", self.source) if self.kind == "checkpoint" else self.source


def is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(
                n.split("/", 1)[-1].startswith(("code/", "constants.pkl")) for n in z.namelist()
            )
    except (zipfile.BadZipFile, OSError):
        return False


# Entries of a .pt2 archive that torch.export.load unpickles as Python objects (pickle.loads:
# any code) or TorchBind objects; tensors and graphs never need them.
_PICKLED_PT2_ENTRIES = ("data/constants/opaque_obj_", "data/constants/custom_obj_")


def load_exported(path: str | Path) -> nn.Module:
    """A .pt2 ExportedProgram's module, loaded so that no code in the file runs: archives with
    pickled Python constants are refused, and torch's fallback from ``weights_only=True`` to
    ``False`` (for old-style constants) is forced back to ``True``."""
    import os

    try:
        with zipfile.ZipFile(path) as z:
            pickled = [n for n in z.namelist() if any(e in n for e in _PICKLED_PT2_ENTRIES)]
    except (zipfile.BadZipFile, OSError) as e:
        raise ModelSourceError(
            f"{path}: not a loadable .pt2 ExportedProgram ({first_line(e)})"
        ) from None
    if pickled:
        raise ModelSourceError(
            f"{path}: holds pickled Python objects ({pickled[0].rsplit('/', 1)[-1]}), which "
            "would run code when loaded; export the model with tensors only, or pass the "
            "nn.Module's source (zoo:NAME, module:factory) with --weights"
        )
    # a quantized graph calls quantized_decomposed ops, registered by importing their module; a
    # dynamic-int8 one holds torchao's int8 weight tensors, known once torchao.quantization is
    # imported (heavy: only when the plain load fails). Without them a fresh process (--resume,
    # bench) cannot read what the quantize step wrote.
    import torch.ao.quantization.fx._decomposed

    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        try:
            return torch.export.load(str(path)).module()
        except Exception:
            try:
                import torchao.quantization  # noqa: F401
            except ImportError:
                raise
            try:
                return torch.export.load(str(path)).module()
            except Exception as e:
                raise ModelSourceError(
                    f"{path}: torch.export cannot load it ({first_line(e)})"
                ) from None
    finally:
        if before is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = before


def read_checkpoint(path: Path) -> Any:
    """torch.load with weights_only (no code runs); a clear error for anything unreadable."""
    if not path.is_file():
        raise ModelSourceError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:
            raise ModelSourceError(
                f"{path}: not a readable safetensors file ({first_line(e)})"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelSourceError(
            f"{path}: not a readable PyTorch weights file ({first_line(e)}); "
            "save it with torch.save(model.state_dict(), path)"
        ) from None


def _checkpoint_model(source: str, meta: dict[str, Any], trust: CodeTrust) -> str:
    """The model a checkpoint records, if it may build it: a zoo model always, a factory only
    as ``trust`` allows (a file handed over must not choose what code runs), never another file
    (a checkpoint naming a checkpoint is not followed)."""
    stored, kwargs = meta["model"], meta.get("model_kwargs", {})
    if not isinstance(stored, str) or not isinstance(kwargs, dict):
        raise ModelSourceError(
            f"{source}: its modelpress metadata is malformed (model must be a string, "
            "model_kwargs a mapping); pass the architecture as the model and this file as --weights"
        )
    if stored.startswith(("zoo:", "hf:")):  # no code of the file's choosing runs for either
        return stored
    if factory_key(stored) is None:
        raise ModelSourceError(
            f"{source}: the checkpoint names {stored!r} as its model, which modelpress does not "
            "follow (a checkpoint's model is zoo:NAME or a factory); pass the architecture as "
            "the model and this file as --weights"
        )
    if not trust.allows(stored):
        raise ModelSourceError(
            f"{source}: the checkpoint asks to run the factory {stored!r} (code outside "
            "modelpress), which you did not name; if you trust this file, pass "
            "--trust-checkpoint-code (Python: trust_checkpoint_code=True), or name "
            f"{stored!r} yourself as the model with this file as --weights"
        )
    return stored


def inspect_source(
    source: str, model_kwargs: dict[str, Any] | None = None, trust: CodeTrust | None = None
) -> ModelSpec:
    """Classify a source and read what it says about itself, without building the model.

    ``trust`` says which factories a checkpoint may name (default: none, only zoo models)."""
    kwargs = dict(model_kwargs or {})
    if source.startswith("memory:"):
        if held(source) is None:
            raise ModelSourceError(
                f"{source}: a module handed to modelpress.compress / quantize in its own "
                "process; a recipe file cannot name one (use zoo:NAME, file.py:factory, a .pt)"
            )
        return ModelSpec(source, "memory", kwargs)
    if source.startswith("zoo:"):
        from modelpress import zoo

        entry = zoo.get(source[4:])
        return ModelSpec(source, "zoo", kwargs, {}, entry.default_input_shape, entry.input_kind)
    if source.startswith("hf:"):
        from modelpress.sources import hf

        said = hf.inspect(source)
        shape = said["input_shape"]
        return ModelSpec(source, "hf", kwargs, {"hf": said}, shape, "image" if shape else None)
    path = Path(source)
    if source.endswith(".pt2"):
        if not path.is_file():
            raise ModelSourceError(f"{source}: ExportedProgram file not found")
        return ModelSpec(source, "exported", kwargs)
    if source.endswith((".pt", ".pth", ".ts")):
        if not path.is_file():
            raise ModelSourceError(f"{source}: model file not found")
        if is_torchscript(path):
            return ModelSpec(source, "torchscript", kwargs)
        ckpt = read_checkpoint(path)
        meta = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
        if not isinstance(meta, dict) or "model" not in meta:
            raise ModelSourceError(
                f"{source}: holds only weights; pass the architecture as the model "
                f"(zoo:NAME or module:factory) and this file as --weights"
            )
        stored = _checkpoint_model(source, meta, trust or CodeTrust())
        inner = inspect_source(stored, {**meta.get("model_kwargs", {}), **kwargs})
        return ModelSpec(
            source, "checkpoint", inner.kwargs, meta, inner.default_input_shape, inner.input_kind
        )
    if source.endswith((".onnx", ".tflite")):
        if not path.is_file():
            raise ModelSourceError(f"{source}: model file not found")
        return ModelSpec(source, path.suffix[1:], kwargs)
    if ":" in source:
        return ModelSpec(source, "factory", kwargs)
    raise ModelSourceError(
        f"'{source}': not a model source; use zoo:NAME, package.module:factory, "
        "path/file.py:factory, a .pt checkpoint/TorchScript file or a .pt2 ExportedProgram"
    )


def _resolve_factory(source: str) -> Any:
    target, _, attr = source.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ModelSourceError(f"{target}: model file not found")
        name = f"_modelpress_user_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        try:
            with import_path(path.parent):  # so the file can import its neighbours
                spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as e:
            raise ModelSourceError(f"{target}: importing it failed ({first_line(e)})") from None
    else:
        try:
            module = importlib.import_module(target)
        except Exception as e:
            raise ModelSourceError(
                f"'{source}': cannot import '{target}' ({first_line(e)})"
            ) from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=3)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else f"; callables there: {', '.join(sorted(names)[:8])}"
        )
        raise ModelSourceError(f"'{source}': '{target}' has no factory '{attr}'{hint}")
    return factory


def _call(factory: Any, kwargs: dict[str, Any], source: str) -> nn.Module:
    try:
        obj = factory(**kwargs)
    except ModelSourceError:
        raise
    except TypeError as e:
        raise ModelSourceError(
            f"'{source}': factory rejected model_kwargs {kwargs} ({e})"
        ) from None
    except Exception as e:
        raise ModelSourceError(f"'{source}': factory failed ({first_line(e)})") from None
    if not isinstance(obj, nn.Module):
        raise ModelSourceError(
            f"'{source}': factory returned {type(obj).__name__}, not an nn.Module"
        )
    return obj


def build(spec: ModelSpec, auto_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """Build (or load) the module. ``auto_kwargs`` fill zoo arguments the user left out."""
    if spec.kind == "torchscript":
        try:
            return torch.jit.load(spec.source, map_location="cpu").eval()
        except Exception as e:
            raise ModelSourceError(
                f"{spec.source}: not a loadable TorchScript file ({first_line(e)})"
            ) from None
    if spec.kind == "exported":
        try:
            return load_exported(spec.source)
        except ModelSourceError:
            raise
        except Exception as e:
            raise ModelSourceError(
                f"{spec.source}: not a loadable .pt2 ExportedProgram ({first_line(e)})"
            ) from None
    if spec.kind == "memory":  # a copy: steps train and fold it, the caller's stays as it was
        return copy.deepcopy(held(spec.source)).eval()
    source = spec.architecture
    if source.startswith("hf:"):  # a checkpoint of one loads its weights below
        from modelpress.sources import hf

        model = hf.build(source, spec.metadata.get("hf") or hf.inspect(source))
    elif source.startswith("zoo:"):
        from modelpress import zoo

        entry = zoo.get(source[4:])
        accepted = zoo.arguments(entry)
        auto = auto_kwargs or {}
        kwargs = {k: v for k, v in auto.items() if accepted is None or k in accepted}
        kwargs.update(spec.kwargs)
        spec.kwargs = kwargs
        model = _call(functools.partial(zoo.create, entry.name), kwargs, source)
    else:
        model = _call(_resolve_factory(source), spec.kwargs, source)
    if spec.kind == "checkpoint":
        if spec.metadata.get("structure"):  # structurally pruned: reshape before loading
            from modelpress.sources.structure import apply_structure

            path = Path(spec.source)
            state = _extract_state_dict(read_checkpoint(path), path)
            apply_structure(model, spec.metadata["structure"], state)
        load_weights(model, Path(spec.source), source)
    return model.eval()


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and isinstance(obj.get("model_state_dict"), dict):
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelSourceError(
            f"{path}: holds no state dict (tensors by parameter name); "
            "save one with torch.save(model.state_dict(), path)"
        )
    if obj and all(k.startswith("module.") for k in obj):  # saved from DataParallel/DDP
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_weights(model: nn.Module, path: Path, source: str) -> None:
    """Load a state dict strictly; on mismatch say which keys and shapes differ."""
    state = _extract_state_dict(read_checkpoint(path), path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} in file vs {tuple(own[k].shape)} in model"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise ModelSourceError(
            f"{path}: weights do not match {source}: {'; '.join(parts)}; "
            "pass the model_kwargs the weights were trained with"
        )
    model.load_state_dict(state, strict=True)


def check_forward(model: nn.Module, example: list[torch.Tensor], source: str) -> list[torch.Tensor]:
    """Run the model once on an example batch; every output tensor, in order. A rejected input
    shape becomes a clear error."""
    try:
        with torch.inference_mode():
            out = model(*example)
    except Exception as e:
        shapes = ", ".join(
            f"{tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}" for t in example
        )
        raise ModelSourceError(
            f"{source} rejects input {shapes} ({first_line(e)}); "
            "set --input-shape / input_shape to what its forward expects"
        ) from None
    return all_tensors(out, source)


def eval_mode(module: nn.Module) -> nn.Module:
    """``module.eval()``; a module unpacked from a .pt2 ExportedProgram is already an inference
    graph and refuses ``.eval()``, so it is returned as it is."""
    try:
        return module.eval()
    except NotImplementedError:
        return module


def all_tensors(out: Any, source: str = "model") -> list[torch.Tensor]:
    """Every output tensor of a forward, in order: a tensor, a tuple/list of tensors, a dict's
    values (insertion order), or an object with ``logits``."""
    if isinstance(out, torch.Tensor):
        return [out]
    values = list(out.values()) if isinstance(out, dict) else out
    if (
        isinstance(values, list | tuple)
        and values
        and all(isinstance(v, torch.Tensor) for v in values)
    ):
        return list(values)
    return [first_tensor(out, source)]


def output_names(out: Any) -> list[str] | None:
    """A dict output's keys (its outputs' names), else None."""
    return [str(k) for k in out] if isinstance(out, dict) else None


def first_tensor(out: Any, source: str = "model") -> torch.Tensor:
    """The output modelpress evaluates: the tensor itself, or the first of a tuple/list/dict."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list | tuple) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict) and out:
        value = next(iter(out.values()))
        if isinstance(value, torch.Tensor):
            return value
    if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
        return out.logits
    raise ModelSourceError(
        f"{source}: forward returned {type(out).__name__}; modelpress needs a tensor"
    )
