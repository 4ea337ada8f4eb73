"""Named start-up phases run in order, each a list of sync or async checks with a timeout.

A phase runs all its checks (in the order they were added) and collects their problems
together; if any is an error the phase fails and the phases after it do not run. The
result is a ``StartupReport``.

A check is a callable taking no arguments, sync or async. It passes by returning ``None``,
``True`` or a short message (``str``); it fails by returning ``False``, by raising
(``StartupCheckError`` for a clear message with key, rule and hint) or by running past its
timeout. It may also return ``StartupProblem`` objects (errors and warnings), as the
built-in ``config`` check does, or a mapping of facts to show in the report (never a
secret value).
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from rollsafe.errors import UsageError
from rollsafe.startup.report import CheckResult, StartupCheckError, StartupProblem, StartupReport

__all__ = ["DEFAULT_PHASES", "DEFAULT_TIMEOUT", "Check", "StartupSequence"]

DEFAULT_PHASES = ("config", "auth", "dependencies")
#: seconds a user check may run before it fails its phase
DEFAULT_TIMEOUT = 10.0
_MESSAGE_LIMIT = 300

CheckFunc = Callable[[], Any]
_F = TypeVar("_F", bound=Callable[..., Any])
#: turns any text that may carry a secret value into text that does not
Redactor = Callable[[str], str]


def _no_redaction(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class Check:
    """A named check of a phase. ``timeout=None`` runs it inline, without a time limit."""

    name: str
    func: CheckFunc
    timeout: float | None = DEFAULT_TIMEOUT

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func) or inspect.iscoroutinefunction(
            getattr(self.func, "__call__", None)  # noqa: B004 - async callable objects
        )


class _Timeout(Exception):
    pass


class StartupSequence:
    """Phases ``config``, ``auth``, ``dependencies`` (and any added), run in order."""

    def __init__(self, phases: Iterable[str] = DEFAULT_PHASES) -> None:
        self._phases: dict[str, list[Check]] = {}
        for phase in phases:
            self.add_phase(phase)
        self.redact: Redactor = _no_redaction

    @property
    def phases(self) -> tuple[str, ...]:
        return tuple(self._phases)

    def checks(self, phase: str) -> tuple[Check, ...]:
        return tuple(self._phase(phase))

    def add_phase(self, name: str, *, after: str | None = None) -> None:
        """Add a phase at the end, or right after phase ``after``."""
        if not name or name in self._phases:
            raise UsageError(f"start-up phase {name!r} is empty or already exists")
        if after is None:
            self._phases[name] = []
            return
        self._phase(after)
        items = list(self._phases.items())
        at = [n for n, _ in items].index(after) + 1
        items.insert(at, (name, []))
        self._phases = dict(items)

    def add_check(
        self,
        phase: str,
        func: CheckFunc,
        *,
        name: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Check:
        """Add a check to ``phase``; its name defaults to the function's name."""
        checks = self._phase(phase)
        check_name = name or getattr(func, "__name__", None) or repr(func)
        if any(c.name == check_name for c in checks):
            raise UsageError(
                f"phase {phase!r} already has a check named {check_name!r}",
                hint="pass name= to tell the two apart",
            )
        if timeout is not None and timeout <= 0:
            raise UsageError(f"check {check_name!r}: timeout must be positive, not {timeout}")
        check = Check(check_name, func, timeout)
        checks.append(check)
        return check

    def check(
        self, phase: str, *, name: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
    ) -> Callable[[_F], _F]:
        """Decorator form of ``add_check``: ``@sequence.check("dependencies", timeout=2)``."""

        def decorate(func: _F) -> _F:
            self.add_check(phase, func, name=name, timeout=timeout)
            return func

        return decorate

    def _phase(self, phase: str) -> list[Check]:
        checks = self._phases.get(phase)
        if checks is None:
            close = difflib.get_close_matches(phase, list(self._phases), n=1)
            raise UsageError(
                f"unknown start-up phase {phase!r}",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + f"phases: {', '.join(self._phases)}; add one with add_phase()",
            )
        return checks

    # --- running ----------------------------------------------------------------------

    def run(self) -> StartupReport:
        """Run every phase in order, here and now (async checks get a loop of their own)."""
        return self._report(self._run_sync)

    async def run_async(self) -> StartupReport:
        """Run every phase in order on the running event loop. Sync checks with a timeout
        run in a daemon thread, so a stuck one cannot hold the process."""
        import asyncio

        start = time.perf_counter()
        results: list[CheckResult] = []
        failed: str | None = None
        for phase, checks in self._phases.items():
            for check in checks:
                began = time.perf_counter()
                try:
                    outcome = await _call_async(check)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    outcome = _raised(exc, check)
                results.append(self._result(phase, check, outcome, time.perf_counter() - began))
            if any(not r.ok for r in results if r.phase == phase):
                failed = phase
                break
        return self._finish(results, failed, time.perf_counter() - start)

    def _report(self, call: Callable[[Check], Any]) -> StartupReport:
        start = time.perf_counter()
        results: list[CheckResult] = []
        failed: str | None = None
        for phase, checks in self._phases.items():
            for check in checks:
                began = time.perf_counter()
                try:
                    outcome = call(check)
                except BaseException as exc:
                    outcome = _raised(exc, check)
                results.append(self._result(phase, check, outcome, time.perf_counter() - began))
            if any(not r.ok for r in results if r.phase == phase):
                failed = phase
                break
        return self._finish(results, failed, time.perf_counter() - start)

    def _finish(
        self, results: list[CheckResult], failed: str | None, duration: float
    ) -> StartupReport:
        names = list(self._phases)
        skipped = tuple(names[names.index(failed) + 1 :]) if failed else ()
        return StartupReport(self.phases, tuple(results), failed, skipped, duration)

    @staticmethod
    def _run_sync(check: Check) -> Any:
        if check.is_async:
            import asyncio

            # a loop of its own, in a thread: works whether or not a loop runs here
            return _in_thread(check.name, lambda: asyncio.run(check.func()), check.timeout)
        if check.timeout is None:
            return check.func()
        return _in_thread(check.name, check.func, check.timeout)

    def _result(self, phase: str, check: Check, outcome: Any, duration: float) -> CheckResult:
        message, problems, details = _interpret(outcome)
        cleaned = tuple(
            replace(
                p,
                phase=phase,
                check=check.name,
                message=self._clean(p.message),
                hint=self._clean(p.hint),
            )
            for p in problems
        )
        ok = not any(p.blocks for p in cleaned)
        if not message:
            message = "ok" if ok else "; ".join(p.describe() for p in cleaned if p.blocks)
        return CheckResult(phase, check.name, ok, self._clean(message), duration, cleaned, details)

    def _clean(self, text: str) -> str:
        text = self.redact(text)
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


async def _call_async(check: Check) -> Any:
    import asyncio

    if check.is_async:
        awaitable: Awaitable[Any] = check.func()
    elif check.timeout is None:
        return check.func()
    else:
        awaitable = _thread_future(check)
    limit = asyncio.timeout(check.timeout)
    try:
        async with limit:
            return await awaitable
    except TimeoutError:
        if limit.expired():  # our limit, not a TimeoutError of the check's own
            raise _Timeout from None
        raise


def _thread_future(check: Check) -> Awaitable[Any]:
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # timed out and cancelled meanwhile
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def target() -> None:
        try:
            value, error = check.func(), None
        except BaseException as exc:
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, name=f"rollsafe-check-{check.name}", daemon=True).start()
    return future


def _in_thread(name: str, func: CheckFunc, timeout: float | None) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"rollsafe-check-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Timeout
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _raised(exc: BaseException, check: Check) -> list[StartupProblem]:
    if isinstance(exc, _Timeout):
        return [
            StartupProblem(
                f"did not finish within {check.timeout:g}s",
                rule="timeout",
                hint="make the check faster or raise its timeout",
            )
        ]
    if isinstance(exc, StartupCheckError):
        return [StartupProblem(exc.message, key=exc.key, rule=exc.rule, hint=exc.hint)]
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        raise exc
    text = str(exc)
    return [
        StartupProblem(
            f"{type(exc).__name__}: {text}" if text else type(exc).__name__,
            rule="exception",
        )
    ]


def _interpret(outcome: Any) -> tuple[str, list[StartupProblem], dict[str, Any]]:
    if outcome is None or outcome is True:
        return "", [], {}
    if outcome is False:
        return "", [StartupProblem("returned False", rule="check")], {}
    if isinstance(outcome, str):
        return outcome, [], {}
    if isinstance(outcome, StartupProblem):
        return "", [outcome], {}
    if isinstance(outcome, Mapping):
        return "", [], {str(k): v for k, v in outcome.items()}
    if isinstance(outcome, list | tuple) and all(isinstance(p, StartupProblem) for p in outcome):
        return "", list(outcome), {}
    return "", [], {}
