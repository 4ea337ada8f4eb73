"""A signal that arrives while the journal is written waits until the write is done."""

from __future__ import annotations

import os
import signal

import pytest

from rollsafe.deploy.cancel import Cancelled, cancellable, deferred, shielded


def _write_while_signalled(signum: int, done: list[str]) -> None:
    with deferred():
        os.kill(os.getpid(), signum)
        done.append("the write finished")
    done.append("never reached")


def _busy_while_signalled(signum: int, done: list[str]) -> None:
    os.kill(os.getpid(), signum)
    for _ in range(1000):  # the handler runs between bytecodes
        pass
    done.append("never reached")


def _compensate_through_a_second_signal(done: list[str]) -> None:
    try:
        _busy_while_signalled(signal.SIGINT, done)
    finally:
        with shielded(), deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the compensation finished")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_deferred_block_is_raised_after_it(signum: signal.Signals) -> None:
    said: list[str] = []
    done: list[str] = []
    with cancellable(said.append), pytest.raises(Cancelled) as cancelled:
        _write_while_signalled(signum, done)
    assert done == ["the write finished"]
    assert cancelled.value.exit_code == 128 + signum
    assert said == []


def test_a_signal_outside_a_deferred_block_is_raised_at_once() -> None:
    done: list[str] = []
    with cancellable(lambda _: None), pytest.raises(Cancelled):
        _busy_while_signalled(signal.SIGINT, done)
    assert done == []


def test_a_second_signal_during_a_compensation_is_only_reported() -> None:
    said: list[str] = []
    done: list[str] = []
    with cancellable(said.append), pytest.raises(Cancelled) as cancelled:
        _compensate_through_a_second_signal(done)
    assert cancelled.value.exit_code == 130
    assert done == ["the compensation finished"]
    assert len(said) == 1
    assert "finishing the rollback" in said[0]
