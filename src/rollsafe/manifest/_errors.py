"""Turns pydantic's validation errors into ManifestErrors with file, line, key and hint."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from rollsafe.errors import ManifestError
from rollsafe.manifest._yaml import LineMap
from rollsafe.manifest.models import (
    Environment,
    EnvSpec,
    HealthCheck,
    Manifest,
    SecretOverride,
    SecretSpec,
    Service,
    ServiceOverride,
    StartupCheck,
)
from rollsafe.rules import RuleSyntaxError

__all__ = ["format_key_path", "from_validation_error"]

# Which model a mapping at a given path is; "*" matches any name (a service, an environment).
_MODEL_AT: dict[tuple[str, ...], type[BaseModel]] = {
    (): Manifest,
    ("environments", "*"): Environment,
    ("services", "*"): Service,
    ("services", "*", "health"): HealthCheck,
    ("services", "*", "health", "startup"): StartupCheck,
    ("services", "*", "env", "*"): EnvSpec,
    ("services", "*", "secrets", "*"): SecretSpec,
    ("services", "*", "overrides", "*"): ServiceOverride,
    ("services", "*", "overrides", "*", "health"): HealthCheck,
    ("services", "*", "overrides", "*", "health", "startup"): StartupCheck,
    ("services", "*", "overrides", "*", "env", "*"): EnvSpec,
    ("services", "*", "overrides", "*", "secrets", "*"): SecretOverride,
}
_NAMED = {"environments", "services", "env", "secrets", "overrides"}


def format_key_path(path: Sequence[str | int]) -> str:
    """``services.backend.env.X`` / ``...rules[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _pattern(path: Sequence[str | int]) -> tuple[str, ...]:
    pattern: list[str] = []
    for i, part in enumerate(path):
        parent = path[i - 1] if i else None
        pattern.append("*" if parent in _NAMED and isinstance(part, str) else str(part))
    return tuple(pattern)


def _data_path(data: Any, loc: Sequence[str | int]) -> list[str | int]:
    """The part of pydantic's ``loc`` that names real keys (drops union tags and the like)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and not isinstance(part, int) and part not in _TAGS:
            path.append(part)  # a missing key: still worth naming
            break
    return path


_TAGS = {"plain", "spec"}


def _unknown_key(path: list[str | int]) -> tuple[str, str]:
    key = str(path[-1])
    model = _MODEL_AT.get(_pattern(path[:-1]))
    if model is None:
        return f"unknown key '{key}'", "remove it"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key '{key}'", f"{hint}allowed here: {', '.join(allowed)}"


def _one(err: Any, data: Any, file: str, lines: LineMap) -> ManifestError:
    path = _data_path(data, err["loc"])
    kind = err["type"]
    hint = ""
    if kind == "extra_forbidden":
        message, hint = _unknown_key(path)
    elif kind == "missing":
        message = f"missing required key '{err['loc'][-1]}'"
        hint = "add it; see `rollsafe schema` for the manifest's shape"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, RuleSyntaxError):
            hint = cause.hint
        elif kind.startswith("bool"):
            hint = "write true or false"
        else:
            hint = "see `rollsafe schema` for what this key accepts"
    if kind == "missing" and path and path[-1] == err["loc"][-1]:
        path = path[:-1]
    key_path = format_key_path(path if kind != "missing" else [*path, err["loc"][-1]])
    return ManifestError(
        message,
        file=file,
        line=lines.line_of(tuple(path)),
        key_path=key_path,
        hint=hint or None,
    )


def from_validation_error(
    exc: ValidationError, data: Any, file: str, lines: LineMap
) -> ManifestError:
    """Every problem pydantic found, the first as the error and the rest in ``more``."""
    problems = [_one(err, data, file, lines) for err in exc.errors()]
    problems.sort(key=lambda p: p.line or 0)
    first, *rest = problems
    first.more = tuple(rest)
    return first
