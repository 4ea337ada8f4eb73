"""Revision instances as real processes: start, probe, log, restart, stop.

Each instance is one process group started with ``start_new_session=True`` and recorded in
the ``processes`` table (see ``server.PROCESSES_SCHEMA``) so that ``emulator stop`` can sweep
any group the supervisor could not reap. stdout and stderr are read by plain threads (a
chatty app must never stall the event loop) and written to the ``LogSink`` line by line
(``run.googleapis.com/stdout`` and ``stderr``). What the platform itself says (``Container
called exit(3).``, startup probe outcomes) goes to ``run.googleapis.com/varlog/system``, as
on Cloud Run; a failed start answers Cloud Run's fixed message, never the app's output.

Locally the container's ``command`` + ``args`` run (the image is ignored). ``${PORT}`` and
``$PORT`` in them are replaced by the instance's port, a convenience Cloud Run does not offer
(Cloud Run passes ``args`` unexpanded), so a manifest can say ``--port "${PORT}"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from rollsafe.emulator._instance import (
    InstanceSpec,
    ProbeSpec,
    RevisionStartError,
    SecretEnv,
    base_env,
    exit_description,
    failed_to_start,
    free_port,
    not_ready,
    probe_failed,
    probe_once,
    probe_succeeded,
    secret_path,
    signal_group,
)
from rollsafe.emulator._ownership import (
    INSTANCE_ENV,
    ensure_processes_table,
    instance_id,
    owned_group,
    start_time,
)
from rollsafe.emulator.logs import SEVERITIES
from rollsafe.emulator.state import EmulatorState

__all__ = [
    "InstanceSpec",
    "ProbeSpec",
    "RevisionStartError",
    "SecretEnv",
    "SecretResolver",
    "Supervisor",
]

#: ``resolve(project, secret, version) -> payload``; raises when missing or disabled
SecretResolver = Callable[[str, str, str], bytes]

_PORT_REF = re.compile(r"\$\{PORT\}|\$PORT\b")
#: Cloud Run's platform log: container exits, startup probe outcomes
SYSTEM_LOG = "run.googleapis.com%2Fvarlog%2Fsystem"
_CONTAINER_FAILED = "failed to start and listen on the port"
_BACKOFF_FIRST = 0.5
_BACKOFF_CAP = 10.0
#: an instance that stayed up this long starts its next backoff from the beginning again
_BACKOFF_RESET_AFTER = 30.0


class _Instance:
    """One revision's process and the asyncio task that keeps it running."""

    def __init__(self, spec: InstanceSpec, port: int) -> None:
        self.spec = spec
        self.port = port
        self.ready = False
        self.stopping = False
        self.process: subprocess.Popen[bytes] | None = None
        self.readers: list[threading.Thread] = []
        self.task: asyncio.Task[None] | None = None
        self.first_start: asyncio.Future[None] | None = None
        #: Cloud Run labels each instance's system entries with an ``instanceId``
        self.instance_id = ""


class Supervisor:
    """Starts, watches and stops the processes of revisions.

    ``start`` waits until the first instance passes its startup probe and raises
    ``RevisionStartError`` otherwise; afterwards a crashed instance is restarted with
    exponential backoff (capped at 10 s) and the crash logged as an ERROR entry.
    """

    def __init__(
        self,
        state: EmulatorState,
        resolve_secret: SecretResolver | None = None,
        *,
        stop_grace: float = 5.0,
    ) -> None:
        self.state = state
        self.resolve_secret = resolve_secret
        self.stop_grace = stop_grace
        self._instances: dict[str, _Instance] = {}
        #: set on every revision process: what lets a sweep prove a group is ours
        self.instance = instance_id(state.state_dir)
        ensure_processes_table(state.db.query)
        self._sweep_leftovers()

    def _sweep_leftovers(self) -> None:
        """Kill the process groups a previous emulator left (it was killed, not stopped).

        Only groups whose leader is provably ours are killed (its recorded start time and
        this state directory's marker in its environment): after a reboot a recorded pgid
        may belong to an unrelated process.
        """
        for row in self.state.db.query("SELECT pgid, start_time FROM processes"):
            if owned_group(row["pgid"], row["start_time"], self.instance):
                signal_group(row["pgid"], signal.SIGKILL)
        self.state.db.execute("DELETE FROM processes")

    # -- queries -------------------------------------------------------------------------

    def port(self, name: str) -> int | None:
        """The port of the revision's ready instance (the router's lookup), else None."""
        instance = self._instances.get(name)
        return instance.port if instance is not None and instance.ready else None

    def running(self) -> list[str]:
        """Full names of the revisions that have an instance (ready or restarting)."""
        return list(self._instances)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, spec: InstanceSpec) -> int:
        """Start the revision's instance and wait until it is ready; returns its port.

        Idempotent: a revision that already has an instance waits for it instead.
        """
        instance = self._instances.get(spec.name)
        if instance is None:
            instance = _Instance(spec, free_port())
            instance.first_start = asyncio.get_running_loop().create_future()
            # a start abandoned by its caller (shutdown) must not log "never retrieved"
            instance.first_start.add_done_callback(_retrieve)
            self._instances[spec.name] = instance
            instance.task = asyncio.create_task(self._keep_running(instance))
        assert instance.first_start is not None
        try:
            await asyncio.shield(instance.first_start)
        except RevisionStartError:
            if self._instances.get(spec.name) is instance:  # not a newer start meanwhile
                del self._instances[spec.name]
            raise
        return instance.port

    async def stop(self, name: str) -> None:
        """Stop the revision's instance (SIGTERM, then SIGKILL after the grace period)."""
        instance = self._instances.pop(name, None)
        if instance is None:
            return
        instance.stopping = True
        instance.ready = False
        if instance.first_start is not None and not instance.first_start.done():
            instance.first_start.set_exception(
                RevisionStartError(
                    f"Revision '{instance.spec.revision}' was stopped while starting."
                )
            )
        if instance.task is not None:
            instance.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await instance.task
        await asyncio.to_thread(self._terminate, instance)

    async def close(self) -> None:
        """Stop every instance, all at once (the emulator is shutting down)."""
        await asyncio.gather(*(self.stop(name) for name in list(self._instances)))

    # -- internals -----------------------------------------------------------------------

    async def _keep_running(self, instance: _Instance) -> None:
        assert instance.first_start is not None
        loop = asyncio.get_running_loop()
        failures = 0
        while not instance.stopping:
            started = loop.time()
            try:
                exited = await self._launch(instance)
            except RevisionStartError as exc:
                if not instance.first_start.done():
                    instance.first_start.set_exception(exc)
                    return
                if exc.exit_code is None and _CONTAINER_FAILED not in exc.message:
                    # not an exit or a probe failure (those are logged already): a secret
                    # that cannot be read any more, say
                    self._system_log(instance, exc.message, "ERROR")
            else:
                if not instance.first_start.done():
                    instance.first_start.set_result(None)
                code = await exited
                instance.ready = False
                if instance.stopping:
                    return
                self._system_log(instance, exit_description(code), "WARNING")
                self._forget(instance)
                if loop.time() - started > _BACKOFF_RESET_AFTER:
                    failures = 0
            delay = min(_BACKOFF_FIRST * 2**failures, _BACKOFF_CAP)
            failures += 1
            await asyncio.sleep(delay)

    async def _launch(self, instance: _Instance) -> asyncio.Future[int]:
        """Spawn the process and wait for its probe; returns a future of its exit code."""
        spec = instance.spec
        env = base_env()
        env.update(spec.env)
        for ref in spec.secrets:
            env[ref.name] = self._secret(spec, ref)
        env.update(
            PORT=str(instance.port),
            K_SERVICE=spec.service,
            K_REVISION=spec.revision,
            K_CONFIGURATION=spec.service,
            **{INSTANCE_ENV: self.instance},
        )
        if not spec.argv:
            raise RevisionStartError(
                f"{not_ready(spec)} The emulator runs the container's command and args (the "
                "image is ignored locally), and the container declares no command."
            )
        argv = [_PORT_REF.sub(str(instance.port), arg) for arg in spec.argv]
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        instance.instance_id = secrets.token_hex(32)
        try:
            process = await asyncio.to_thread(self._spawn, instance, argv, env)
        except OSError as exc:
            # what Cloud Run logs when the entrypoint cannot be executed
            self._system_log(
                instance,
                "terminated: Application failed to start: failed to load "
                f"{argv[0]}: {(exc.strerror or str(exc)).lower()}",
                "ERROR",
            )
            raise failed_to_start(spec, instance.port) from exc
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[int] = loop.create_future()

        def wait() -> None:
            code = process.wait()
            with contextlib.suppress(RuntimeError):  # the loop closed first
                loop.call_soon_threadsafe(_settle, exited, code)

        threading.Thread(target=wait, name=f"wait-{spec.revision}", daemon=True).start()
        try:
            await self._probe(instance, exited)
        except RevisionStartError:
            await asyncio.to_thread(self._terminate, instance)
            raise
        instance.ready = True
        return exited

    def _secret(self, spec: InstanceSpec, ref: SecretEnv) -> str:
        version = ref.version or "latest"
        if self.resolve_secret is None:
            raise RevisionStartError(
                f"{not_ready(spec)} {ref.field_path}: Secret Manager is not available in this "
                "emulator."
            )
        try:
            payload = self.resolve_secret(spec.project, ref.secret, version)
        except Exception as exc:
            # never the payload: only the reference and the store's own message
            reason = getattr(exc, "message", None) or str(exc)
            raise RevisionStartError(
                f"{not_ready(spec)} {ref.field_path}: Secret "
                f"{secret_path(spec.project, ref.secret)}/versions/{version} could not be "
                f"accessed: {reason}"
            ) from None
        return payload.decode("utf-8", errors="replace")

    def _spawn(
        self, instance: _Instance, argv: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        spec = instance.spec
        process = subprocess.Popen(
            argv,
            cwd=spec.working_dir or None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop kills its children too
            close_fds=True,
        )
        instance.process = process
        if instance.stopping:  # stop() ran while we were spawning: it may have missed us
            signal_group(process.pid, signal.SIGKILL)
            process.wait()
            return process
        self.state.db.execute(
            "INSERT OR REPLACE INTO processes (pgid, revision, started, start_time, instance) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                process.pid,
                spec.name,
                datetime.now(UTC).isoformat(),
                start_time(process.pid),
                self.instance,
            ),
        )
        assert process.stdout is not None
        assert process.stderr is not None
        instance.readers = [
            self._reader(spec, "stdout", process.stdout),
            self._reader(spec, "stderr", process.stderr),
        ]
        return process

    def _reader(self, spec: InstanceSpec, stream: str, pipe: IO[bytes]) -> threading.Thread:
        logs = self.state.logs

        def pump() -> None:
            with contextlib.suppress(Exception), pipe:
                for raw in iter(pipe.readline, b""):
                    logs.write_line(
                        project=spec.project,
                        location=spec.location,
                        service=spec.service,
                        revision=spec.revision,
                        stream=stream,
                        line=raw.decode("utf-8", errors="replace"),
                    )

        thread = threading.Thread(target=pump, name=f"{stream}-{spec.revision}", daemon=True)
        thread.start()
        return thread

    async def _probe(self, instance: _Instance, exited: asyncio.Future[int]) -> None:
        """Run the startup probe as Cloud Run does; raises RevisionStartError on failure.

        Attempts start every ``period`` seconds after ``initial_delay``; ``failure_threshold``
        failures in a row fail the start, and so does the process exiting meanwhile. Both
        outcomes are logged to the system log; the error carries Cloud Run's fixed text.
        """
        spec, probe = instance.spec, instance.spec.probe
        loop = asyncio.get_running_loop()
        port = _probe_port(instance)
        if probe.initial_delay:
            await asyncio.wait([exited], timeout=probe.initial_delay)
        failures = attempts = 0
        while not exited.done():
            began = loop.time()
            attempt = asyncio.ensure_future(probe_once(port, probe))
            pending: list[asyncio.Future[Any]] = [attempt, exited]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if not attempt.done():
                attempt.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await attempt
                break
            attempts += 1
            if attempt.result():
                self._system_log(instance, probe_succeeded(spec, probe, port, attempts), "INFO")
                return
            failures += 1
            if failures >= probe.failure_threshold:
                self._system_log(instance, probe_failed(spec, probe, port, failures), "ERROR")
                raise failed_to_start(spec, instance.port)
            pause = probe.period - (loop.time() - began)
            if pause > 0:
                await asyncio.wait([exited], timeout=pause)
        code = exited.result()
        # the readers drain the pipes first, so the app's last lines precede the exit entry
        for reader in instance.readers:
            await asyncio.to_thread(reader.join, 1.0)
        self._system_log(instance, exit_description(code), "WARNING")
        self._forget(instance)
        error = failed_to_start(spec, instance.port)
        error.exit_code = code
        raise error

    def _system_log(self, instance: _Instance, message: str, severity: str) -> None:
        """One entry of ``run.googleapis.com/varlog/system``, labelled as Cloud Run does."""
        spec = instance.spec
        self.state.logs.write_entry(
            project=spec.project,
            location=spec.location,
            service=spec.service,
            revision=spec.revision,
            log_name=f"projects/{spec.project}/logs/{SYSTEM_LOG}",
            severity=SEVERITIES[severity],
            timestamp=datetime.now(UTC),
            text_payload=message,
            labels={"instanceId": instance.instance_id, "container_name": spec.container},
        )

    def _forget(self, instance: _Instance) -> None:
        """The leader is gone: kill what it left in its group, drop its ``processes`` row."""
        if instance.process is not None:
            signal_group(instance.process.pid, signal.SIGKILL)
            self.state.db.execute("DELETE FROM processes WHERE pgid = ?", (instance.process.pid,))

    def _terminate(self, instance: _Instance) -> None:
        """SIGTERM the group, SIGKILL it after the grace period, reap, forget (blocking)."""
        process = instance.process
        if process is None:
            return
        if process.poll() is None:
            signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # children that ignored SIGTERM outlive their parent in the group
        signal_group(process.pid, signal.SIGKILL)
        self._forget(instance)


def _probe_port(instance: _Instance) -> int:
    """Where the probe knocks: the instance's PORT stands for the container port."""
    declared = instance.spec.probe.port
    if declared is None or declared == instance.spec.container_port:
        return instance.port
    return declared


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[int], code: int) -> None:
    if not future.done():
        future.set_result(code)
