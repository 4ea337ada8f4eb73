"""Pipeline pieces that need no platform: flag validation, traffic blending, the plan diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollsafe.deploy.pipeline import DeployOptions, _blend, _validate
from rollsafe.errors import RollsafeError, UsageError
from rollsafe.manifest import load_manifest


@pytest.fixture
def staging(basic_manifest: Path):  # type: ignore[no-untyped-def]
    return load_manifest(basic_manifest).resolve("staging")


def test_skip_checks_without_force_is_refused_in_strict(staging) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RollsafeError) as info:
        _validate(staging, DeployOptions(skip_checks=True))
    assert info.value.exit_code == 1
    assert "--force --reason" in (info.value.hint or "")


def test_force_needs_a_reason(staging) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        _validate(staging, DeployOptions(force=True, skip_checks=True))
    _validate(staging, DeployOptions(force=True, reason="INC-9", skip_checks=True))


@pytest.mark.parametrize(
    "steps",
    [(10, 50), (50, 10, 100), (), (0, 100), (-10, 100)],
    ids=["no-100", "falling", "empty", "zero", "negative"],
)
def test_bad_canary_steps(staging, steps: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        _validate(staging, DeployOptions(canary=steps))


@pytest.mark.parametrize(
    ("previous", "percent", "expected"),
    [
        ({"a": 100}, 10, {"a": 90, "b": 10}),
        ({"a": 100}, 100, {"b": 100}),
        ({"a": 50, "c": 50}, 10, {"a": 45, "c": 45, "b": 10}),
        ({"a": 67, "c": 33}, 50, {"a": 34, "c": 16, "b": 50}),
        ({}, 10, {"b": 100}),
    ],
    ids=["one-previous", "all", "two-previous", "rounding", "first-deploy"],
)
def test_blend(previous: dict[str, int], percent: int, expected: dict[str, int]) -> None:
    split = _blend(previous, "b", percent)
    assert split == expected
    assert sum(split.values()) == 100
