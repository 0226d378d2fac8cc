"""A recipe's validation errors as users read them: one ``path: message`` per problem, an
unknown key with the closest known one, and a field a CLI flag set named by that flag."""

from __future__ import annotations

import difflib
from typing import Any, get_args

from pydantic import BaseModel, ValidationError


def _path_of(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(recipe)"


def _flag_of(loc: tuple[Any, ...], flags: dict[str, str]) -> str | None:
    """The CLI flag that set the field at ``loc`` (``*`` in ``flags`` stands for an index)."""
    for end in range(len(loc), 0, -1):  # the field, else the nearest section a flag set whole
        parts = loc[:end]
        for key in (
            _path_of(parts),
            ".".join("*" if isinstance(p, int) else str(p) for p in parts),
        ):
            if key in flags:
                return flags[key]
    return None


def _section(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The config class that holds the field at ``loc`` (for the keys it knows)."""
    cls: type[BaseModel] | None = root
    for part in loc[:-1]:
        field = cls.model_fields.get(str(part)) if cls else None
        if field is None:
            return None
        found = [
            a
            for a in (field.annotation, *get_args(field.annotation))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        cls = found[0] if found else None
    return cls


def _unknown_key(loc: tuple[Any, ...], root: type[BaseModel], is_step: bool) -> str:
    cls = _section(loc, root)
    known = [k for k in cls.model_fields if k != "type"] if cls else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    if is_step:
        elsewhere = getattr(cls, "key_elsewhere", lambda _: None)(str(loc[-1])) if loc else None
        if elsewhere and not close:
            own = next((w for w, c in cls.variants().items() if c is cls), "")  # type: ignore[union-attr]
            return f"a key of {elsewhere} only, not of {own or 'this step'}"
        return f"unknown key{hint}; `modelpress steps` lists the keys of every step type"
    return f"unknown key{hint}; the keys here are: {', '.join(known)}" if known else "unknown key"


def validation_errors(
    exc: ValidationError,
    root: type[BaseModel],
    at: tuple[Any, ...] = (),
    flags: dict[str, str] | None = None,
) -> list[str]:
    """One ``path: message`` per problem (paths below ``at``, fields of ``root``); a field a
    CLI flag set is named by its flag, with the value given."""
    out = []
    for err in exc.errors():
        loc = (*at, *err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = _unknown_key(err["loc"], root, is_step=bool(at) and at[0] == "steps")
        flag = _flag_of(loc, flags or {})
        if flag is None:
            out.append(f"{_path_of(loc)}: {msg}")
            continue
        got = err.get("input")
        # the value given, unless the message already quotes it
        plain = isinstance(got, str | int | float) and str(got) not in ("", *msg.split("'"))
        shown = f" (got {got!r})" if plain else ""
        out.append(f"{flag}: {msg}{shown}")
    return out
