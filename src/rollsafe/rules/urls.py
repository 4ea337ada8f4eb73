"""Rules for URLs: ``url`` and ``same_origin``.

The origins of plain configuration values are not secret, so ``same_origin`` names them in
its message (that is what makes the finding actionable); judged on a secret it names only
the keys.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import SplitResult, urlsplit

from rollsafe.rules._base import RuleContext, RuleFailure, RuleSpec, RuleSyntaxError, register

__all__ = ["origin_of"]

DEFAULT_PORTS = {"http": 80, "https": 443}
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNSAFE_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


def _split(value: str) -> SplitResult | None:
    """The parts of an absolute http(s) URL with a host, or None."""
    if _UNSAFE_CHARS.search(value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts


def origin_of(value: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, default ports left out; else None."""
    parts = _split(value)
    if parts is None:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or DEFAULT_PORTS[scheme]
    return f"{scheme}://{host}" if port == DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


# --- url ----------------------------------------------------------------------------------


def _parse_no_argument(raw: Any) -> None:
    if raw is not None:
        raise RuleSyntaxError("url takes no argument", hint="write `- url`")


def url(value: str, arg: None, ctx: RuleContext) -> Iterator[RuleFailure]:
    """An absolute http(s) URL with a host; in strict environments https and not loopback."""
    if not value:
        return
    parts = _split(value)
    if parts is None:
        yield RuleFailure(
            "url",
            "is not an absolute http or https URL with a host",
            "write it as https://host/path",
        )
        return
    if not ctx.strict:
        return
    if parts.scheme.lower() != "https":
        yield RuleFailure(
            "url",
            f"uses http; {ctx.env} is strict and requires https",
            "serve it over https, or mark the environment strict: false",
        )
    if _is_local(parts.hostname or ""):
        yield RuleFailure(
            "url",
            f"points at the local machine, which {ctx.env} (strict) cannot reach",
            "use the address the service is reached at in this environment",
        )


# --- same_origin --------------------------------------------------------------------------


def _parse_var_name(raw: Any) -> str:
    if not isinstance(raw, str) or not _VAR_NAME.fullmatch(raw.strip()):
        raise RuleSyntaxError(
            "same_origin needs the name of another variable of the service"
            + ("" if raw is None else f", not {raw!r}"),
            hint="write {same_origin: FRONTEND_URL}",
        )
    return raw.strip()


def same_origin(value: str, arg: str, ctx: RuleContext) -> Iterator[RuleFailure]:
    """The value's scheme, host and port equal those of variable ``arg``."""
    if not value:
        return
    key = ctx.key or "this value"
    other = ctx.values.get(arg)
    if not other:
        yield RuleFailure(
            "same_origin",
            f"cannot be compared with {arg}: {arg} has no value",
            f"set {arg} for this service, or remove the rule",
        )
        return
    mine, theirs = origin_of(value), origin_of(other)
    if mine is None or theirs is None:
        which = key if mine is None else arg
        yield RuleFailure(
            "same_origin",
            f"cannot compare origins: {which} is not an absolute http or https URL",
            "write both as https://host/path",
        )
    elif mine != theirs:
        if ctx.is_secret:
            message = f"{key} is not on the origin of {arg}"
            hint = f"use the same scheme, host and port as {arg}"
        else:
            message = f"{key} is on origin {mine}, but {arg} is on {theirs}"
            hint = f"make {key} start with {theirs}, or change {arg}"
        yield RuleFailure("same_origin", message, hint)


_EXAMPLE_FRONTEND = "https://app.staging.example.com"

register(
    RuleSpec(
        name="url",
        func=url,
        parse_arg=_parse_no_argument,
        summary="an absolute http(s) URL with a host; https and no loopback in strict environments",
        passing=((None, "https://app.staging.example.com/auth/callback"),),
        failing=(
            (None, "http://app.staging.example.com"),
            (None, "http://localhost:3000"),
            (None, "app.staging.example.com/auth/callback"),
        ),
        example_context=RuleContext(env="staging", strict=True, key="FRONTEND_URL"),
    )
)
register(
    RuleSpec(
        name="same_origin",
        func=same_origin,
        parse_arg=_parse_var_name,
        summary="same scheme, host and port as another variable of the service",
        passing=(("FRONTEND_URL", "https://app.staging.example.com/auth/callback"),),
        failing=(
            ("FRONTEND_URL", "https://api.staging.example.com/auth/callback"),
            ("FRONTEND_URL", "http://app.staging.example.com/auth/callback"),
            ("BACKEND_URL", "https://app.staging.example.com/auth/callback"),
        ),
        refers_to="var",
        example_context=RuleContext(
            env="staging",
            strict=True,
            key="OAUTH_REDIRECT_URI",
            values={"FRONTEND_URL": _EXAMPLE_FRONTEND},
        ),
    )
)
