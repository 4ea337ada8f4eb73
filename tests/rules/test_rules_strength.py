"""The secret-strength estimate: hand-made values fail, random ones pass, nothing leaks."""

from __future__ import annotations

import base64
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rollsafe.rules import (
    RuleContext,
    RuleRef,
    SecretStrength,
    _strength,
    estimate_secret_strength,
    is_placeholder,
    run_rules,
)

SRC = Path(__file__).resolve().parents[2] / "src"

WEAK = {
    "hex-block-repeated": "0123456789abcdef" * 4,
    "one-char": "a" * 64,
    "service-words": "netra-staging-service-secret",
    "password123": "Password123!",
    "changeme": "changeme",
    "keyboard": "qwertyuiopasdfghjklzxcvbnm123456",
    "passphrase": "correcthorsebatterystaple",
    "sentence": "my-super-secret-jwt-key-for-staging-2024",
    "runs": "aaaaaaaaaaaaaaaaaaaaaaaaBBBBBBBBBBBBBBBB1234",
    "x-run": "x" * 40,
    "deadbeef": "deadbeef" * 8,
    "leet": "P@ssw0rd!2024",
    "camel-words": "MySuperSecretKey",
}

GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "token_urlsafe(32)": lambda r: base64.urlsafe_b64encode(r.randbytes(32)).rstrip(b"=").decode(),
    "token_hex(32)": lambda r: r.randbytes(32).hex(),
    "token_urlsafe(24)": lambda r: base64.urlsafe_b64encode(r.randbytes(24)).rstrip(b"=").decode(),
    "token_hex(16)": lambda r: r.randbytes(16).hex(),
    "b64encode(token_bytes(32))": lambda r: base64.b64encode(r.randbytes(32)).decode(),
}

RANDOM_RULES = (RuleRef("machine_secret"), RuleRef("not_placeholder"), RuleRef("jwt_hmac", "HS256"))


@pytest.mark.parametrize("value", WEAK.values(), ids=WEAK.keys())
def test_hand_made_values_fail_machine_secret(value: str) -> None:
    failures = run_rules(value, [RuleRef("machine_secret")], RuleContext(is_secret=True))
    assert failures
    assert all(f.rule == "machine_secret" for f in failures)


@pytest.mark.parametrize("make", GENERATORS.values(), ids=GENERATORS.keys())
def test_random_values_never_fail(make: Callable[[random.Random], str]) -> None:
    rng = random.Random(20240611)
    failed = {}
    for _ in range(2000):
        value = make(rng)
        failures = run_rules(value, RANDOM_RULES, RuleContext(is_secret=True))
        if failures:
            failed[value] = [f.message for f in failures]
    assert failed == {}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0123456789abcdef" * 4, _strength.REASON_REPEAT),
        ("a" * 64, _strength.REASON_REPEAT),
        ("a" * 64, _strength.REASON_COMPRESSIBLE),
        ("qwertyuiopasdfghjklzxcvbnm123456", _strength.REASON_SEQUENCE),
        ("correcthorsebatterystaple", _strength.REASON_WORDS),
        ("my-super-secret-jwt-key-for-staging-2024", _strength.REASON_WORDS),
        ("my-super-secret-jwt-key-for-staging-2024", _strength.REASON_PLACEHOLDER),
        ("x" * 40, _strength.REASON_PLACEHOLDER),
        ("P@ssw0rd!2024", _strength.REASON_WORDS),
    ],
    ids=[
        "block",
        "run",
        "compressible",
        "keyboard",
        "words",
        "sentence",
        "placeholder",
        "x",
        "leet",
    ],
)
def test_each_weakness_is_named(value: str, reason: str) -> None:
    assert reason in estimate_secret_strength(value).reasons


def test_low_entropy_is_reported_with_its_figures() -> None:
    strength = estimate_secret_strength("deadbeef" * 8)
    [message] = [r for r in strength.reasons if r.startswith("low character entropy")]
    assert message == "low character entropy (2.2 bits/char, needs 2.7 for hex)"


def test_bit_estimate_message() -> None:
    strength = estimate_secret_strength("Password123!")
    assert (
        strength.failures(128)[0] == f"estimated {strength.bits:.0f} bits of randomness, needs 128"
    )
    assert strength.bits < 40


@pytest.mark.parametrize(
    ("value", "alphabet", "classes"),
    [
        ("0123456789abcdef" * 2, 16, ("lower", "digit")),
        ("0123456789ABCDEF" * 2, 16, ("upper", "digit")),
        ("31415926535897932384", 10, ("digit",)),
        ("abc-def_ghiJKL012", 64, ("lower", "upper", "digit", "symbol")),
        ("ab+c/d0==", 38, ("lower", "digit", "symbol")),
        ("lowercase-and-digits-123", 38, ("lower", "digit", "symbol")),
        ("Mixed Case, Space!", 85, ("lower", "upper", "symbol")),
    ],
    ids=["hex", "HEX", "digits", "base64url", "base64-padded", "lower-digit-dash", "printable"],
)
def test_alphabet_from_characters(value: str, alphabet: int, classes: tuple[str, ...]) -> None:
    strength = estimate_secret_strength(value)
    assert strength.alphabet == alphabet
    assert strength.classes == classes


def test_base64_padding_carries_no_bits() -> None:
    padded = estimate_secret_strength(base64.b64encode(random.Random(1).randbytes(32)).decode())
    assert padded.length == 44
    assert padded.bits == 43 * 6


def test_token_hex_16_sits_exactly_at_128_bits() -> None:
    assert estimate_secret_strength("3f9a0c7e1b5d82a4c6e0f1d3b5a79c2e").bits == 128


def test_strength_never_shows_the_value() -> None:
    value = "Zq9vK2mX7pL4sT8wB3hF6dR1yN5cG0eU8kW2"
    strength = estimate_secret_strength(value)
    text = repr(strength) + str(strength) + strength.describe()
    assert value not in text
    assert value[:8] not in text
    assert strength.describe().startswith("36 characters (lowercase, uppercase, digits)")


def test_strength_is_frozen() -> None:
    strength = estimate_secret_strength("abc")
    assert isinstance(strength, SecretStrength)
    with pytest.raises(AttributeError):
        strength.bits = 999  # type: ignore[misc]


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "CHANGE_ME",
        "change-me-123",
        "your-api-key-here",
        "<your-api-key>",
        "${SERVICE_SECRET}",
        "{{ secret }}",
        "$JWT_SECRET",
        "xxxx",
        "XXXX-XXXX-XXXX",
        "********",
        "TODO",
        "test",
        "dummy-token",
        "none",
        "null",
        "placeholder",
        "sample_secret_value",
        "P@ssw0rd",
        "mysupersecret",
        "---",
    ],
)
def test_placeholders(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value",
    [
        "q3Vn8TzK0xWb5LrF2mYc7HsJ9pDg4AeUk6NtQ1vZo-w",
        "FAke_SD8QDDpav1BvgJbWdFhJOo3eVzqwsHmkHNKuec",
        "sk_test_9fK2mQ7xWb5LrF2mYc7HsJ9pDg4A",
        "83920193746501",
        "Deploy2Staging",
        "3f9a0c7e1b5d82a4c6e0f1d3b5a79c2e",
    ],
    ids=["random", "random-with-fake", "vendor-test-key", "digits", "words", "hex"],
)
def test_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_expected_shannon_matches_known_values() -> None:
    # 32 random hex characters show about 3.61 bits/char on average, 64 about 3.82.
    assert _strength._expected_shannon(32, 16) == pytest.approx(3.61, abs=0.01)
    assert _strength._expected_shannon(64, 16) == pytest.approx(3.82, abs=0.01)
    assert _strength._expected_shannon(10_000, 16) == pytest.approx(4.0, abs=0.01)


def _run_python(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_import_loads_no_dictionary_and_no_heavy_packages() -> None:
    out = _run_python(
        "import sys, rollsafe.rules\n"
        "heavy = {'zxcvbn', 'google', 'typer', 'rich', 'pydantic', 'yaml'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    assert out == "[]"


def test_dictionary_loads_on_first_use() -> None:
    out = _run_python(
        "import sys, rollsafe.rules as r\n"
        "r.estimate_secret_strength('correcthorsebatterystaple')\n"
        "print('zxcvbn.frequency_lists' in sys.modules)"
    )
    assert out == "True"
