"""The example backend under uvicorn, as real processes on loopback."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
import pytest

from tests.conftest import CANARY_JWT, CANARY_STRONG
from tests.startup.conftest import (
    RULE_SOURCES,
    WEAK_SECRET,
    assert_no_canary,
    json_lines,
    run_to_exit,
    staging_values,
)

SOURCES = pytest.mark.parametrize("source", sorted(RULE_SOURCES), ids=sorted(RULE_SOURCES))


def _env(source: str, **changes: str) -> dict[str, str]:
    return {**RULE_SOURCES[source](), **staging_values(), **changes}


def _token(key: str = CANARY_JWT, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "user-1", "iat": now, "exp": now + 60, "aud": "https://app.staging.example.com"}
    return jwt.encode({**body, **claims}, key, algorithm="HS256")


@SOURCES
def test_good_env_is_healthy(serve: Any, source: str) -> None:
    server = serve(_env(source))
    health = server.get("/health")
    assert health.status == 200
    body = health.json()
    assert body["status"] == "healthy"
    assert (body["service"], body["env"]) == ("backend", "staging")
    assert server.get("/ready").status == 200
    fingerprint = hashlib.sha256(CANARY_STRONG.encode()).hexdigest()[:8]
    assert server.get("/api/fingerprint").json()["sha256_8"] == fingerprint
    assert body["checks"]["revision"]["fingerprint"] == fingerprint
    passed = [line for line in json_lines(server.output()) if line.get("event")]
    assert [line["outcome"] for line in passed] == ["passed"]
    assert_no_canary(server.output(), health.body.decode())


@SOURCES
def test_weak_service_secret_exits_3_with_one_critical_line(source: str) -> None:
    code, out, err = run_to_exit(_env(source, SERVICE_SECRET=WEAK_SECRET))
    assert code == 3, out + err
    critical = [line for line in json_lines(out + err) if line.get("severity") == "CRITICAL"]
    assert len(critical) == 1
    (line,) = critical
    assert line["outcome"] == "failed"
    assert line["phase"] == "config"
    assert line["exit_code"] == 3
    assert ("SERVICE_SECRET", "machine_secret") in {(f["key"], f["rule"]) for f in line["failures"]}
    assert "SERVICE_SECRET" in line["message"]
    assert line["skipped"] == ["auth", "dependencies"]
    assert_no_canary(out, err)


def test_the_incident_is_named_in_full() -> None:
    """Weak secret, off-origin redirect and a short JWT key: every cause, in one line."""
    env = _env(
        "contract",
        SERVICE_SECRET=WEAK_SECRET,
        OAUTH_REDIRECT_URI="https://api.staging.example.com/auth/callback",
        JWT_SECRET_KEY="staging-jwt-key-2024",
    )
    code, out, err = run_to_exit(env)
    assert code == 3
    (line,) = [x for x in json_lines(out + err) if x.get("severity") == "CRITICAL"]
    rules = {(f["key"], f["rule"]) for f in line["failures"]}
    assert rules >= {
        ("SERVICE_SECRET", "machine_secret"),
        ("OAUTH_REDIRECT_URI", "same_origin"),
        ("JWT_SECRET_KEY", "jwt_hmac"),
    }
    assert "staging-jwt-key-2024" not in out + err
    assert_no_canary(out, err)


@SOURCES
def test_degraded_mode_answers_503_everywhere(serve: Any, source: str) -> None:
    server = serve(_env(source, SERVICE_SECRET=WEAK_SECRET, ROLLSAFE_STARTUP_MODE="degraded"))
    health = server.get("/health")
    assert health.status == 503
    body = health.json()
    assert body["status"] == "unhealthy"
    assert body["phase"] == "config"
    assert [(f["key"], f["rule"]) for f in body["failures"]] == [
        ("SERVICE_SECRET", "machine_secret")
    ]
    for path in ("/api/fingerprint", "/api/me", "/auth/callback?code=x", "/no-such-route"):
        answer = server.get(path)
        assert answer.status == 503, path
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["failures"][0]["key"] == "SERVICE_SECRET"
    assert server.get("/ready").status == 503
    assert server.process.poll() is None
    (line,) = [x for x in json_lines(server.output()) if x.get("event")]
    assert (line["severity"], line["outcome"]) == ("ERROR", "degraded")
    assert_no_canary(server.output(), health.body.decode())


def test_dev_is_degraded_by_default_and_warns_on_rules(serve: Any) -> None:
    env = {
        **RULE_SOURCES["manifest"]("dev"),
        **staging_values(),
        "ENVIRONMENT": "dev",
        "FRONTEND_URL": "http://localhost:3000",
        "OAUTH_REDIRECT_URI": "http://localhost:3000/auth/callback",
        "SERVICE_SECRET": WEAK_SECRET,
    }
    server = serve(env)
    health = server.get("/health")
    assert health.status == 200  # a weak secret is a warning outside strict environments
    assert [w["key"] for w in health.json()["warnings"]] == ["SERVICE_SECRET"]
    del env["SECRET_KEY"]
    missing = serve(env)  # a missing value blocks everywhere; dev degrades, it does not exit
    assert missing.get("/health").status == 503
    assert missing.get("/health").json()["failures"][0]["rule"] == "required"
    assert_no_canary(server.output(), missing.output())


def test_broken_after_start_switch(serve: Any) -> None:
    server = serve(_env("contract", BACKEND_FAIL_HEALTH="1"))
    # the first answer is the startup probe's: healthy, so the revision becomes ready
    assert server.get("/health").status == 200
    health = server.get("/health")
    assert health.status == 503
    body = health.json()
    assert (body["status"], body["phase"]) == ("unhealthy", "runtime")
    assert body["failures"][0]["key"] == "BACKEND_FAIL_HEALTH"
    assert server.get("/ready").status == 200  # it started; it is broken
    assert server.get("/api/fingerprint").status == 200


def test_broken_from_the_start_switch(serve: Any) -> None:
    server = serve(_env("contract", BACKEND_FAIL_HEALTH="start"))
    assert [server.get("/health").status for _ in range(2)] == [503, 503]


def test_oauth_callback_and_jwt(serve: Any) -> None:
    server = serve(_env("contract"))
    redirect = server.get("/auth/callback?code=abc&next=/dashboard?tab=1")
    assert redirect.status == 303
    assert redirect.headers["location"] == "https://app.staging.example.com/dashboard?tab=1"
    cookie = redirect.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    me = server.get("/api/me", {"Cookie": f"session={token}"})
    assert me.status == 200
    assert me.json()["signed_with"] == "JWT_SECRET_KEY"
    bearer = server.get("/api/me", {"Authorization": f"Bearer {_token()}"})
    assert (bearer.status, bearer.json()["sub"]) == (200, "user-1")
    forged = _token("another-key-another-key-another-key-0123456789")
    assert server.get("/api/me", {"Authorization": f"Bearer {forged}"}).status == 401
    assert server.get("/api/me").status == 401
    for bad in ("https://evil.example.com/x", "//evil.example.com/x", "/\\evil.example.com"):
        assert server.get(f"/auth/callback?code=abc&next={bad}").status == 400, bad
    assert_no_canary(server.output())


def test_jwt_secret_for_the_environment_wins(serve: Any) -> None:
    own = "St4gingOnlyJwtKey_9vQ2mX7pL4sT8wZ3bF6hJ1dR5yN0cV7gB2eU9kW4qA"
    server = serve(_env("contract", JWT_SECRET_STAGING=own))
    assert server.get("/api/me", {"Authorization": f"Bearer {_token()}"}).status == 401
    answer = server.get("/api/me", {"Authorization": f"Bearer {_token(own)}"})
    assert answer.json()["signed_with"] == "JWT_SECRET_STAGING"
    assert own not in server.output()


def _wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_fail_file_makes_every_route_503_while_it_exists(serve: Any, tmp_path: Any) -> None:
    flag = tmp_path / "broken"
    server = serve(_env("contract", BACKEND_FAIL_FILE=str(flag)))
    assert server.get("/health").status == 200
    flag.write_text("")
    for path in ("/health", "/", "/api/fingerprint", "/ready"):
        answer = server.get(path)
        assert answer.status == 503, path
        assert answer.json()["status"] == "unhealthy"
    flag.unlink()
    assert server.get("/health").status == 200
    assert server.get("/").status == 200


def test_log_file_lines_are_logged_once_at_error(serve: Any, tmp_path: Any) -> None:
    feed = tmp_path / "feed.log"
    feed.write_text("written before the start: not logged\n")
    server = serve(_env("contract", BACKEND_LOG_FILE=str(feed)))
    assert server.get("/health").status == 200
    with feed.open("a") as handle:
        handle.write("JWT secret not configured\n")
        handle.flush()

    def logged() -> list[dict[str, Any]]:
        return [x for x in json_lines(server.output()) if x.get("logger") == "backend"]

    _wait_for(lambda: len(logged()) >= 1)
    with feed.open("a") as handle:
        handle.write("second line\n")
    _wait_for(lambda: len(logged()) >= 2)
    assert [(x["severity"], x["message"]) for x in logged()] == [
        ("ERROR", "JWT secret not configured"),
        ("ERROR", "second line"),
    ]
    assert "written before the start" not in server.output()
