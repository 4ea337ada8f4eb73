"""``StartupGuard``: the manifest's rules, run inside the service before it serves.

::

    from fastapi import FastAPI
    from rollsafe.startup import StartupGuard

    app = FastAPI()
    StartupGuard.from_env().install(app)

Two failure modes, chosen by ``ROLLSAFE_STARTUP_MODE`` (default ``fail_fast`` in strict
environments, ``degraded`` elsewhere):

- ``fail_fast``: one JSON line with ``"severity": "CRITICAL"`` on stderr, then
  ``DeterministicStartupError``; the process exits with code 3, so a Cloud Run revision
  never becomes Ready and never gets traffic.
- ``degraded``: one JSON line with ``"severity": "ERROR"``; the app starts, every route
  answers 503 naming the failed checks, and ``/health`` answers 503 (never 500).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any, Literal, TypeVar

from rollsafe.errors import ManifestError, RollsafeError, UsageError
from rollsafe.startup._process import EXIT_CODE, arm_exit, log_entry, stderr_line
from rollsafe.startup.config import MODE_VAR, StartupMode, check_config, check_jwt_secret, pick_mode
from rollsafe.startup.contract import (
    CONTRACT_VAR,
    MANIFEST_VAR,
    ContractError,
    ServiceContract,
    load_contract,
)
from rollsafe.startup.report import DeterministicStartupError, StartupProblem, StartupReport
from rollsafe.startup.sequence import DEFAULT_TIMEOUT, CheckFunc, StartupSequence
from rollsafe.startup.signing import JwtSecret, resolve_jwt_secret

__all__ = ["StartupGuard"]

State = Literal["starting", "ready", "degraded", "failed", "stopping"]
HEALTH_TIMEOUT = 2.0
_REDACTED = "[redacted]"
_F = TypeVar("_F", bound=Callable[..., Any])


class StartupGuard:
    """Runs a ``StartupSequence`` whose ``config`` phase checks the service's contract.

    ``from_env()`` is the usual way in. ``exit_process`` (true from ``from_env``) makes a
    ``fail_fast`` failure end the process with code 3 under any server; tests that run the
    guard in-process leave it false and get ``DeterministicStartupError`` instead.
    """

    def __init__(
        self,
        contract: ServiceContract | None,
        *,
        environ: Mapping[str, str] | None = None,
        mode: str | None = None,
        sequence: StartupSequence | None = None,
        source: str = "",
        contract_error: RollsafeError | None = None,
        exit_process: bool = False,
        exit_grace: float = 3.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.contract = contract
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.source = source
        self._contract_error = contract_error
        self._mode_problem: StartupProblem | None = None
        self.mode: StartupMode = self._pick_mode(mode)
        self.sequence = sequence or StartupSequence()
        self.sequence.redact = self.redact
        self.exit_process = exit_process
        self.exit_grace = exit_grace
        self._log = log or stderr_line
        self.report: StartupReport | None = None
        self.state: State = "starting"
        self._jwt: JwtSecret | None = None
        self._health = StartupSequence(phases=("runtime",))
        self._health.redact = self.redact
        self._lifespan_depth = 0
        self._lazy_lock: Any = None
        self._add_builtin_checks()

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        exit_process: bool = True,
        sequence: StartupSequence | None = None,
    ) -> StartupGuard:
        """A guard for this process: the contract from ``ROLLSAFE_CONTRACT`` (or from the
        manifest that ``ROLLSAFE_MANIFEST``, ``ROLLSAFE_SERVICE`` and ``ROLLSAFE_ENV`` name),
        the mode from ``ROLLSAFE_STARTUP_MODE``. Never raises for a missing or bad contract:
        the ``config`` phase reports it, so the service fails the way it is configured to.
        """
        env = os.environ if environ is None else environ
        contract: ServiceContract | None = None
        error: RollsafeError | None = None
        source = ""
        try:
            contract, source = load_contract(env)
        except RollsafeError as exc:
            error = exc
        return cls(
            contract,
            environ=env,
            source=source,
            contract_error=error,
            exit_process=exit_process,
            sequence=sequence,
        )

    # --- configuration ----------------------------------------------------------------

    def _pick_mode(self, mode: str | None) -> StartupMode:
        strict = self.contract.strict if self.contract is not None else True
        if mode is not None:
            return pick_mode(mode, strict=strict, explicit=True)[0]
        chosen, self._mode_problem = pick_mode(self.environ.get(MODE_VAR, ""), strict=strict)
        return chosen

    def _add_builtin_checks(self) -> None:
        if "config" not in self.sequence.phases:
            raise UsageError(
                "the start-up sequence has no 'config' phase", hint="keep the default phases"
            )
        self.sequence.add_check("config", self._check_config, name="rules", timeout=None)
        has_jwt = self.contract is not None and self.contract.jwt_secret is not None
        if has_jwt and "auth" in self.sequence.phases:
            self.sequence.add_check("auth", self._check_auth, name="jwt_secret", timeout=None)

    def _check_config(self) -> str | list[StartupProblem]:
        problems = [self._mode_problem] if self._mode_problem else []
        if self.contract is None:
            return [*problems, self._contract_problem()]
        problems += check_config(self.contract, self.environ)
        return problems or f"{len(self.contract.keys)} keys match the rules"

    def _contract_problem(self) -> StartupProblem:
        exc = self._contract_error or ContractError("no start-up contract")
        message = str(exc) if isinstance(exc, ManifestError) else exc.message
        if isinstance(exc, ManifestError) and exc.more:
            message += f" (and {len(exc.more)} more problem(s) in the manifest)"
        key = CONTRACT_VAR if self.environ.get(CONTRACT_VAR, "").strip() else MANIFEST_VAR
        return StartupProblem(message, key=key, rule="contract", hint=exc.hint or "")

    def _check_auth(self) -> str | list[StartupProblem]:
        assert self.contract is not None
        self._jwt, problems = check_jwt_secret(self.contract, self.environ)
        if problems or self._jwt is None:
            return problems
        return f"signs tokens with {self._jwt.name} ({self._jwt.algorithm})"

    def check(
        self, phase: str, *, name: str | None = None, timeout: float | None = DEFAULT_TIMEOUT
    ) -> Callable[[_F], _F]:
        """Add a check: ``@guard.check("dependencies", timeout=2)``. See ``StartupSequence``."""
        return self.sequence.check(phase, name=name, timeout=timeout)

    def add_check(
        self,
        phase: str,
        func: CheckFunc,
        *,
        name: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        self.sequence.add_check(phase, func, name=name, timeout=timeout)

    def health_check(
        self, func: _F | None = None, *, name: str | None = None, timeout: float = HEALTH_TIMEOUT
    ) -> Any:
        """Add a check run on every ``/health`` request after a good start-up.

        Same protocol as start-up checks; a mapping it returns shows under ``checks`` in
        the health JSON. Failing, it makes ``/health`` answer 503 with phase ``runtime``.
        """

        def decorate(f: _F) -> _F:
            self._health.add_check("runtime", f, name=name, timeout=timeout)
            return f

        return decorate if func is None else decorate(func)

    # --- what the guard knows ---------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every secret value of this service replaced by ``[redacted]``."""
        if not text or self.contract is None:
            return text
        values = {self.environ.get(n, "") for n in self.contract.secret_names}
        for value in sorted((v for v in values if v), key=len, reverse=True):
            text = text.replace(value, _REDACTED)
        return text

    def jwt_secret(self) -> JwtSecret:
        """The JWT signing secret the contract declares (resolved once, then kept)."""
        if self._jwt is None:
            if self.contract is None or self.contract.jwt_secret is None:
                raise ContractError(
                    "the service's contract declares no jwt_secret",
                    hint="add jwt_secret: {names: [...], algorithm: HS256} to the service",
                )
            self._jwt = resolve_jwt_secret(
                self.contract.jwt_secret,
                self.environ,
                strict=self.contract.strict,
                env=self.contract.env,
            )
        return self._jwt

    def identity(self) -> dict[str, Any]:
        contract = self.contract
        return {
            "service": contract.service if contract else None,
            "env": contract.env if contract else None,
            "strict": contract.strict if contract else None,
            "mode": self.mode,
        }

    # --- running ----------------------------------------------------------------------

    def run_checks(self, *, exit_on_failure: bool | None = None) -> StartupReport:
        """Run the sequence now, without a server.

        ``fail_fast`` failure: the CRITICAL line, then ``SystemExit(3)`` (its cause is the
        ``DeterministicStartupError``) when ``exit_on_failure`` (default: ``exit_process``),
        else the ``DeterministicStartupError`` itself. ``degraded``: returns the report.
        """
        report = self.sequence.run()
        exiting = self.exit_process if exit_on_failure is None else exit_on_failure
        try:
            return self._conclude(report)
        except DeterministicStartupError as error:
            if exiting:
                raise SystemExit(EXIT_CODE) from error
            raise

    async def run_checks_async(self) -> StartupReport:
        """Run the sequence on the running loop; ``fail_fast`` failure raises
        ``DeterministicStartupError`` (after the CRITICAL line)."""
        return self._conclude(await self.sequence.run_async())

    def _conclude(self, report: StartupReport) -> StartupReport:
        report = replace(report, context={**self.identity(), "source": self.source})
        self.report = report
        if report.ok:
            self.state = "ready"
            severity = "WARNING" if report.warnings else "INFO"
            self._write(severity, "passed", report)
            return report
        if self.mode == "degraded":
            self.state = "degraded"
            self._write("ERROR", "degraded", report)
            return report
        self.state = "failed"
        error = DeterministicStartupError(report)
        self._write("CRITICAL", "failed", report)
        raise error

    def _write(self, severity: str, outcome: str, report: StartupReport) -> None:
        self._log(self.redact(json.dumps(log_entry(severity, outcome, report))))

    def arm_exit(self, delay: float | None = None) -> None:
        """End the process with code 3 after ``delay`` seconds (default ``exit_grace``),
        unless it ends first: uvicorn exits 3 by itself after a failed lifespan start-up;
        this makes any other server, or one that ignores the failure, do the same."""
        arm_exit(self.exit_grace if delay is None else delay)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """The ASGI lifespan: checks before the app serves. ``FastAPI(lifespan=guard.lifespan)``
        or ``async with guard.lifespan(app):`` inside an app's own lifespan."""
        if self._lifespan_depth:  # installed twice (install() and lifespan=): run once
            yield
            return
        self._lifespan_depth += 1
        try:
            self.state = "starting"
            try:
                await self.run_checks_async()
            except DeterministicStartupError:
                if self.exit_process:
                    self.arm_exit()
                raise
            finally:
                _publish(app, self)
            yield
        finally:
            self._lifespan_depth -= 1
            if self.state == "ready":
                self.state = "stopping"

    async def ensure_started(self) -> None:
        """Run the checks on the first request when no lifespan ran (servers without one)."""
        if self.report is not None:
            return
        import asyncio

        if self._lazy_lock is None:
            self._lazy_lock = asyncio.Lock()
        async with self._lazy_lock:
            if self.report is not None:
                return
            try:
                await self.run_checks_async()
            except DeterministicStartupError:
                if self.exit_process:
                    self.arm_exit(0.5)

    # --- answers ------------------------------------------------------------------------

    async def health(self) -> tuple[int, dict[str, Any]]:
        """``/health``: 200 ``healthy``, or 503 ``unhealthy`` / ``starting``; never 500."""
        base = {k: v for k, v in self.identity().items() if k in ("service", "env")}
        report = self.report
        if report is None:
            return 503, {"status": "starting", **base}
        if not report.ok:
            return 503, self.unhealthy_body(report, status="unhealthy")
        runtime = await self._health.run_async()
        if not runtime.ok:
            return 503, {
                "status": "unhealthy",
                **base,
                "phase": "runtime",
                "failures": [p.to_dict() for p in runtime.failures],
            }
        checks = {r.check: dict(r.details) or r.message for r in runtime.results}
        return 200, {
            "status": "healthy",
            **base,
            "mode": self.mode,
            "phases": list(report.phases),
            "warnings": [p.to_dict() for p in report.warnings],
            "checks": checks,
        }

    def ready(self) -> tuple[int, dict[str, Any]]:
        """``/ready``: 200 only after a good start-up and before shutdown."""
        ok = self.state == "ready"
        return (200 if ok else 503), {"ready": ok, "status": self.state}

    def unhealthy_body(self, report: StartupReport, *, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "service": report.context.get("service"),
            "env": report.context.get("env"),
            "phase": report.failed_phase,
            "failures": [p.to_dict() for p in report.failures],
        }

    @property
    def blocking(self) -> bool:
        """True when requests must get 503: the start-up checks failed."""
        return self.state in ("degraded", "failed")

    # --- wiring -------------------------------------------------------------------------

    def install(
        self,
        app: _F,
        *,
        health_path: str = "/health",
        ready_path: str = "/ready",
        lifespan: bool = True,
    ) -> _F:
        """Add the lifespan, the middleware and the ``/health`` and ``/ready`` routes to a
        FastAPI or Starlette app (before it starts). Returns the app."""
        from rollsafe.startup.asgi import install_into

        install_into(self, app, health_path, ready_path, lifespan=lifespan)
        return app


def _publish(app: Any, guard: StartupGuard) -> None:
    state = getattr(app, "state", None)
    if state is not None:
        state.rollsafe_startup = guard.report
        state.rollsafe_guard = guard
