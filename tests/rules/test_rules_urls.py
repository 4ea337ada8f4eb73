"""url and same_origin."""

from __future__ import annotations

import pytest

from rollsafe.rules import RuleContext, RuleFailure, RuleSyntaxError, parse_rule, run_rules
from rollsafe.rules.urls import origin_of

STRICT = RuleContext(env="staging", strict=True, key="FRONTEND_URL")
LAX = RuleContext(env="dev", strict=False, key="FRONTEND_URL")


def judge(rule: object, value: str, ctx: RuleContext) -> list[RuleFailure]:
    return run_rules(value, [parse_rule(rule)], ctx)


def messages(rule: object, value: str, ctx: RuleContext) -> list[str]:
    return [f.message for f in judge(rule, value, ctx)]


NOT_URL = "is not an absolute http or https URL with a host"


@pytest.mark.parametrize(
    ("value", "strict", "lax"),
    [
        ("https://app.staging.example.com", [], []),
        ("https://app.staging.example.com:8443/auth/callback?x=1", [], []),
        ("http://app.staging.example.com", ["uses http; staging is strict and requires https"], []),
        (
            "http://localhost:3000",
            [
                "uses http; staging is strict and requires https",
                "points at the local machine, which staging (strict) cannot reach",
            ],
            [],
        ),
        (
            "https://127.0.0.1:8443",
            ["points at the local machine, which staging (strict) cannot reach"],
            [],
        ),
        (
            "https://[::1]/",
            ["points at the local machine, which staging (strict) cannot reach"],
            [],
        ),
        ("app.staging.example.com/auth", [NOT_URL], [NOT_URL]),
        ("ftp://files.example.com", [NOT_URL], [NOT_URL]),
        ("https://", [NOT_URL], [NOT_URL]),
        ("https://example.com:99999", [NOT_URL], [NOT_URL]),
        ("https://exa mple.com", [NOT_URL], [NOT_URL]),
        ("", [], []),
    ],
    ids=[
        "https",
        "port-path-query",
        "http",
        "localhost",
        "loopback-v4",
        "loopback-v6",
        "no-scheme",
        "ftp",
        "no-host",
        "bad-port",
        "space",
        "empty",
    ],
)
def test_url(value: str, strict: list[str], lax: list[str]) -> None:
    assert messages("url", value, STRICT) == strict
    assert messages("url", value, LAX) == lax


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://App.Example.com/x", "https://app.example.com"),
        ("https://app.example.com:443/x", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("http://app.example.com:8080/", "http://app.example.com:8080"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
        ("mailto:ops@example.com", None),
    ],
    ids=["case", "https-default", "http-default", "other-port", "ipv6", "not-http"],
)
def test_origin_of(value: str, origin: str | None) -> None:
    assert origin_of(value) == origin


def _redirect_ctx(frontend: str | None, *, is_secret: bool = False) -> RuleContext:
    values = {} if frontend is None else {"FRONTEND_URL": frontend}
    return RuleContext(
        env="staging", strict=True, key="OAUTH_REDIRECT_URI", is_secret=is_secret, values=values
    )


FRONTEND = "https://app.staging.example.com"


@pytest.mark.parametrize(
    ("value", "frontend", "expected"),
    [
        ("https://app.staging.example.com/auth/callback", FRONTEND, []),
        ("https://app.staging.example.com:443/auth/callback", FRONTEND, []),
        (
            "https://api.staging.example.com/auth/callback",
            FRONTEND,
            [
                "OAUTH_REDIRECT_URI is on origin https://api.staging.example.com, "
                "but FRONTEND_URL is on https://app.staging.example.com"
            ],
        ),
        (
            "http://app.staging.example.com/auth/callback",
            FRONTEND,
            [
                "OAUTH_REDIRECT_URI is on origin http://app.staging.example.com, "
                "but FRONTEND_URL is on https://app.staging.example.com"
            ],
        ),
        (
            "https://app.staging.example.com/cb",
            None,
            ["cannot be compared with FRONTEND_URL: FRONTEND_URL has no value"],
        ),
        (
            "/auth/callback",
            FRONTEND,
            ["cannot compare origins: OAUTH_REDIRECT_URI is not an absolute http or https URL"],
        ),
        (
            "https://app.staging.example.com/cb",
            "app.staging.example.com",
            ["cannot compare origins: FRONTEND_URL is not an absolute http or https URL"],
        ),
    ],
    ids=[
        "same",
        "explicit-default-port",
        "other-host",
        "other-scheme",
        "missing",
        "relative",
        "other-bad",
    ],
)
def test_same_origin(value: str, frontend: str | None, expected: list[str]) -> None:
    assert messages({"same_origin": "FRONTEND_URL"}, value, _redirect_ctx(frontend)) == expected


def test_same_origin_hint_names_the_expected_origin() -> None:
    [failure] = judge(
        {"same_origin": "FRONTEND_URL"},
        "https://api.staging.example.com/auth/callback",
        _redirect_ctx(FRONTEND),
    )
    assert failure.hint == (
        "make OAUTH_REDIRECT_URI start with https://app.staging.example.com, or change FRONTEND_URL"
    )


def test_same_origin_on_a_secret_names_only_the_keys() -> None:
    [failure] = judge(
        {"same_origin": "FRONTEND_URL"},
        "https://api.staging.example.com/auth/callback",
        _redirect_ctx(FRONTEND, is_secret=True),
    )
    assert failure.message == "OAUTH_REDIRECT_URI is not on the origin of FRONTEND_URL"
    assert "example.com" not in failure.message + failure.hint


@pytest.mark.parametrize(
    "raw",
    ["same_origin", {"same_origin": ""}, {"same_origin": 5}, {"same_origin": "NOT A NAME"}],
    ids=["bare", "empty", "number", "spaces"],
)
def test_same_origin_bad_arguments(raw: object) -> None:
    with pytest.raises(RuleSyntaxError, match="same_origin needs the name") as err:
        parse_rule(raw)
    assert err.value.hint == "write {same_origin: FRONTEND_URL}"
