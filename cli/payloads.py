"""Checking a payload typed on the command line before it is signed: every problem at once.

Why here: a service checks a payload when it executes the transaction, and its receipt names
the first problem only (one receipt, one code). A person typing ``--payload`` or ``--action``
would then fix one field per block. The command checks the same payload models the services
execute with (nothing is re-stated here, so the two cannot disagree) and lists every problem,
naming unknown fields and the field that was probably meant.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ValidationError


def payload_models() -> dict[str, type[BaseModel]]:
    """The payload model of every transaction kind the chain executes: the integration contract's
    list (``schemas/asyncapi_models.py``, tested to cover every kind), imported on demand."""
    from traco.schemas.asyncapi_models import payload_models as contract_models

    return contract_models()


def payload_problems(kind: str, payload: Any, skip: Collection[str] = ()) -> list[str]:
    """Every problem of ``payload`` for ``kind`` (an unknown kind is one, naming the kind meant).
    ``skip`` names top-level fields whose problem the caller already reported (e.g. a ``--to``
    that named no key)."""
    models = payload_models()
    model = models.get(kind)
    if model is None:
        hint = difflib.get_close_matches(kind, list(models), n=1)
        meant = f"; did you mean {hint[0]}?" if hint else ""
        return [f"--kind: {kind!r} is not a kind this chain executes{meant} (kinds: {', '.join(models)})"]
    return model_problems(model, payload, skip)


def model_problems(model: type[BaseModel], value: Any, skip: Collection[str] = ()) -> list[str]:
    """Every validation problem of ``value`` against ``model``, one readable line each."""
    if not isinstance(value, Mapping):
        return ["must be a JSON object"]
    try:
        model.model_validate(dict(value))
    except ValidationError as exc:
        found = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(error.get("loc", ()))
            if loc and loc[0] in skip:
                continue
            found.append(_describe(model, loc, error))
        return list(dict.fromkeys(found))
    return []


def _describe(model: type[BaseModel], loc: tuple[Any, ...], error: Mapping[str, Any]) -> str:
    path, owner = _walk(model, loc)
    where = path or "payload"
    kind = error.get("type")
    if kind == "missing":
        return f"{where}: required"
    if kind == "extra_forbidden":
        fields = sorted(owner.model_fields) if owner is not None else []
        hint = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        said = f"{where}: unknown field"
        if hint:
            said += f"; did you mean {hint[0]}?"
        return said + (f" (fields: {', '.join(fields)})" if fields else "")
    return f"{where}: {str(error.get('msg', 'invalid')).removeprefix('Value error, ')}"


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """The path a person reads for ``loc`` (without pydantic's union tags) and the model that
    holds its last field, where the models say so."""
    parts: list[str] = []
    current: Any = model
    for i, part in enumerate(loc):
        holder = _model_of(current, part)
        if isinstance(part, int):
            parts.append(f"[{part}]")
            current = _item(current)
            continue
        if holder is not None and part in holder.model_fields:
            if i == len(loc) - 1:
                return _join([*parts, str(part)]), holder
            parts.append(str(part))
            current = holder.model_fields[part].annotation
            continue
        tagged = _tagged(current, part)
        if tagged is not None:  # a discriminated union's tag: pydantic's, not the person's
            current = tagged
            continue
        parts.append(str(part))
        if i == len(loc) - 1:
            return _join(parts), holder
        current = None
    return _join(parts), current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _join(parts: list[str]) -> str:
    return ".".join(parts).replace(".[", "[")


def _options(annotation: Any) -> list[Any]:
    """The alternatives of an annotation (``Annotated``, ``Optional`` and unions unwrapped)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _options(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [o for arg in typing.get_args(annotation) for o in _options(arg)]
    return [annotation]


def _model_of(annotation: Any, field: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and field in option.model_fields:
            return option
    models = [o for o in _options(annotation) if isinstance(o, type) and issubclass(o, BaseModel)]
    return models[0] if len(models) == 1 else None


def _tagged(annotation: Any, tag: Any) -> type[BaseModel] | None:
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel) and "type" in option.model_fields:
            literal = option.model_fields["type"].annotation
            if typing.get_origin(literal) is Literal and tag in typing.get_args(literal):
                return option
    return None


def _item(annotation: Any) -> Any:
    for option in _options(annotation):
        args = typing.get_args(option)
        if typing.get_origin(option) in (list, tuple) and args:
            return args[0]
        if typing.get_origin(option) is dict and len(args) == 2:
            return args[1]
    return None
