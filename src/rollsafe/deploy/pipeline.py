"""``rollsafe deploy``: the stages of ``deploy.stages.Stage``, in order.

Every stage is written to the journal before it runs; one that changes the platform writes
its compensation in the same write. Verification stages return a result (None: passed);
any failure after the revision is created runs the compensation (``deploy.undo``): exit 3,
or 4 if that fails too. A ``Cancelled`` (SIGINT/SIGTERM) runs it as well: exit 130/143.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from rollsafe.check import CheckReport, check_environment
from rollsafe.deploy._auth import probe_client, token_required, tokens_for
from rollsafe.deploy.analysis import CanaryJudge, Verdict
from rollsafe.deploy.cancel import Cancelled, deferred, shielded
from rollsafe.deploy.events import DeployEvent, DeployListener
from rollsafe.deploy.health import HealthSpec, ProbeResult, probe, verify
from rollsafe.deploy.plan import DeployPlan, build_plan
from rollsafe.deploy.result import DeployOptions, DeployResult
from rollsafe.deploy.stages import CANDIDATE_TAG, Compensation, Outcome, Stage
from rollsafe.deploy.undo import cancelled, undo
from rollsafe.errors import RollsafeError, StoreError, UsageError
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform, PlatformError, RevisionFailedError
from rollsafe.platforms.idtoken import IdTokenError, IdTokens, audience_of
from rollsafe.platforms.logs import RevisionLogs
from rollsafe.state.base import StateUnavailableError
from rollsafe.state.journal import DeployJournal, DeployRecord
from rollsafe.stores import SecretStore

__all__ = ["DeployOptions", "DeployResult", "run_deploy"]  # the first two from .result


@dataclass
class _StageResult:
    """What a stage found: ``failure`` says why it failed (the deploy is then undone)."""

    failure: str | None = None


class _Stop(Exception):
    """Ends the pipeline early with a result."""

    def __init__(self, result: DeployResult) -> None:
        super().__init__(result.message)
        self.result = result


def health_spec(env: ResolvedEnvironment, service: str) -> HealthSpec:
    """The service's health conditions from the manifest."""
    return env.services[service].health


def _checks_label(options: DeployOptions, strict: bool) -> str:
    if options.skip_checks:
        return "forced" if options.force else "skipped"
    return "passed"


def _validate(env: ResolvedEnvironment, options: DeployOptions) -> None:
    if options.force and not (options.reason and options.reason.strip()):
        raise UsageError(
            "--force needs --reason TEXT",
            hint="say why, e.g. --reason 'hotfix for INC-123'; the reason is recorded",
        )
    if options.skip_checks and env.strict and not options.force:
        raise RollsafeError(
            f"--skip-checks is refused in strict environment '{env.name}': skipping the secret "
            "check is how the staging incident shipped a weak SERVICE_SECRET",
            hint="run the checks (drop --skip-checks), or add --force --reason TEXT; the "
            "reason is recorded in the journal and on the revision",
        )
    steps = options.canary
    if (
        not steps
        or steps[-1] != 100
        or steps[0] <= 0
        or any(b <= a for a, b in itertools.pairwise(steps))
    ):
        raise UsageError(
            "--canary steps must be percents above 0 that rise and end at 100",
            hint="for example --canary 10,50,100",
        )


class _Run:
    #: reads a revision's logs when it fails to start (set by ``run_deploy``)
    logs: RevisionLogs | None = None

    def __init__(
        self,
        env: ResolvedEnvironment,
        service: str,
        options: DeployOptions,
        platform: Platform,
        store: SecretStore,
        journal: DeployJournal,
        listener: DeployListener,
        client: httpx.Client,
        tokens: IdTokens,
    ) -> None:
        self.env, self.service, self.options = env, service, options
        self.platform, self.store, self.journal = platform, store, journal
        self.emit, self.client, self.tokens = listener, client, tokens
        self.public = env.services[service].public
        self.health = health_spec(env, service)
        self.record: DeployRecord | None = None
        self.plan: DeployPlan | None = None
        self.report: CheckReport | None = None
        #: tags on the service that are not rollsafe's (kept through shift and done)
        self.other_tags: dict[str, str] = {}
        #: the audience of each tag URL's tokens: the service URL (Cloud Run always takes it)
        self.audiences: dict[str, str] = {}

    @contextmanager
    def stage(
        self, name: Stage, detail: str = "", compensation: Compensation | None = None
    ) -> Iterator[_StageResult]:
        """Journal the stage (with the ``compensation`` of what it changes, in the same
        write: before it acts), announce it, and close it with its result."""
        start = time.perf_counter()
        result = _StageResult()
        try:
            # a signal during the write is raised after it, inside this try: the stage it
            # interrupts is always closed as cancelled
            with deferred():
                if self.record is not None:
                    changes = {"compensation": compensation.to_dict()} if compensation else {}
                    self.record = self.journal.stage(self.record, name, **changes)
                self.emit(DeployEvent("start", name, detail))
            yield result
        except _Stop as stop:
            self._close_stage(name, False, stop.result.message, start)
            raise
        except Cancelled as cancel:
            self._close_stage(name, False, f"cancelled ({cancel.name})", start)
            raise
        except BaseException:
            self._close_stage(name, False, "error", start)
            raise
        self._close_stage(name, result.failure is None, result.failure or "", start)

    def _close_stage(self, name: Stage, ok: bool, detail: str, start: float) -> None:
        seconds = time.perf_counter() - start
        with deferred():
            if self.record is not None:
                self.record = self.journal.stage_done(self.record, ok, detail)
            self.emit(DeployEvent("ok" if ok else "fail", name, detail, seconds))

    def info(self, text: str, stage: str = "") -> None:
        self.emit(DeployEvent("info", stage, text))

    def stop(self, code: int, outcome: Outcome, message: str, hint: str | None = None) -> _Stop:
        return _Stop(
            DeployResult(code, outcome, message, self.plan, self.record, self.report, hint=hint)
        )

    # -- stages --
    def make_plan(self, checks: str) -> DeployPlan:
        deploy_id = self.record.id if self.record else "dry-run-000"
        with self.stage(Stage.PLAN):
            plan = build_plan(
                self.env,
                self.env.services[self.service],
                platform=self.platform,
                store=self.store,
                deploy_id=deploy_id,
                checks=checks,
                reason=self.options.reason,
                image=self.options.image,
                extra_env=self.options.extra_env,
            )
            pinned = ", ".join(f"{k}={r.secret}:{r.version}" for k, r in plan.spec.secrets.items())
            self.info(
                f"revision {plan.spec.revision}; secrets pinned: {pinned or '(none)'}", Stage.PLAN
            )
        self.plan = plan
        if self.record is not None:
            previous = plan.serving_revision.name if plan.serving_revision else None
            self.record = self.journal.update(
                self.record,
                revision=plan.spec.revision,
                previous_revision=previous,
                previous_split=plan.previous_split,
                image=plan.spec.image,
            )
        return plan

    def preflight(self) -> None:
        if self.options.skip_checks:
            self.emit(DeployEvent("skip", Stage.PREFLIGHT, f"skipped: {self.options.reason or ''}"))
            return
        with self.stage(Stage.PREFLIGHT):
            # `rollsafe check` itself: differs_from reads the other environments too
            report = check_environment(self.env, self.store, services=[self.service])
            self.report = report
            counts = report.counts()
            if self.record is not None:
                self.record = self.journal.update(self.record, findings=counts)
            if report.ok:
                return
            if self.options.force:
                self.info(f"{counts['error']} blocking finding(s), forced: {self.options.reason}")
                if self.record is not None:
                    self.record = self.journal.update(self.record, checks="forced")
                # the plan was made before the checks ran: the revision must say forced too
                if self.plan is not None:
                    self.plan = self.plan.with_checks("forced")
                return
            raise self.stop(
                1,
                Outcome.REFUSED,
                f"preflight found {counts['error']} blocking finding(s); nothing was changed",
                "fix the findings (rollsafe check --env ENV), or --force --reason TEXT",
            )

    def access(self, plan: DeployPlan) -> None:
        """Before any change: can the probes get the ID token a private service needs, and
        does the service's access match the manifest's ``public``?"""
        serving = plan.serving
        open_now = False  # anyone may call the existing service, whatever the manifest says
        if serving is not None:
            try:
                open_now = self.platform.is_public(self.service)
            except PlatformError as exc:
                self.info(f"access: cannot read the service's IAM policy ({exc.message})")
            else:
                if open_now != self.public:
                    self.info(_access_note(self.env, self.service, self.public), "access")
        if self.public:
            return  # anonymous probes are answered; a token is sent when one can be had
        # a new service has no URL yet: the check is that a token can be minted at all
        url = serving.url if serving and serving.url else f"https://{self.service}.invalid"
        try:
            self.tokens.token(audience_of(url))
        except IdTokenError as exc:
            # anonymous probes of a private service could only be refused: fail closed, except
            # where a non-strict environment's service is open anyway
            if token_required(self.env, self.service) or not open_now:
                raise self.stop(
                    1,
                    Outcome.REFUSED,
                    f"{self.service} is private (public: false) and its probes need an ID "
                    f"token, but {exc.message}; nothing was changed",
                    exc.hint,
                ) from None
            self.info(
                f"warning: {exc.message}; the service is open to anyone: probing without a token",
                "access",
            )

    def current_health(self, plan: DeployPlan) -> None:
        serving = plan.serving
        if serving is None or not serving.url or not serving.split():
            self.emit(DeployEvent("skip", Stage.CURRENT_HEALTH, "no serving revision yet"))
            return
        with self.stage(Stage.CURRENT_HEALTH):
            # it may have scaled to zero: its first answer may take health.cold_start
            result = probe(self.client, serving.url, self.health, cold=True)
            self.info(f"serving revision: {result.describe()}", Stage.CURRENT_HEALTH)
            if result.ok:
                return
            if self.options.force:
                self.info("serving revision is unhealthy; going on because of --force")
                return
            raise self.stop(
                1,
                Outcome.REFUSED,
                f"the serving revision is unhealthy ({result.describe()}); nothing was changed",
                "fixing a broken service is the usual reason to force: "
                "rollsafe deploy ... --force --reason 'fix the outage'",
            )

    def compensation(self, plan: DeployPlan) -> Compensation:
        """What undoes this deploy: the split and every tag that served before it, or, for a
        service this deploy creates, deleting it."""
        if plan.serving is None:
            return Compensation.delete()
        return Compensation.restore(plan.previous_split, plan.serving.tags())

    def create(self, plan: DeployPlan) -> None:
        with self.stage(Stage.CREATE, plan.spec.revision, self.compensation(plan)):
            try:
                info = self.platform.create_revision(plan.spec, tag=CANDIDATE_TAG)
            except RevisionFailedError as exc:
                reason = self.start_failure(exc)
                raise self.stop(
                    3,
                    Outcome.FAILED,
                    f"revision {plan.spec.revision} did not start: {reason}",
                    "traffic stayed on the serving revision; the revision's logs have the rest",
                ) from exc
        # tags set by others (gcloud, a blue/green label) survive the shift and done
        self.other_tags = {t: r for t, r in info.tags().items() if t != CANDIDATE_TAG}
        if plan.serving is None and self.public:
            self.make_public()

    def make_public(self) -> None:
        """A service created with ``public: true`` gets the ``allUsers`` invoker binding, as
        ``gcloud run deploy --allow-unauthenticated`` sets it. Only at creation: an existing
        service's access is never changed silently (``rollsafe drift`` names a mismatch)."""
        try:
            self.platform.set_public(self.service, True)
        except PlatformError as exc:
            # as gcloud: the service is deployed; the probes carry tokens; drift shows it
            self.info(f"warning: could not make {self.service} public: {exc.message}", Stage.CREATE)
            return
        self.info(f"allUsers may invoke {self.service} (public: true)", Stage.CREATE)

    def start_failure(self, exc: RevisionFailedError) -> str:
        """Why the revision did not start, from its logs (the exit code, the guard's CRITICAL
        line), as on Google: the platform's own message quotes neither."""
        fallback = exc.message.splitlines()[0]
        if self.logs is None:
            return fallback
        # a container that exited or failed its probe: its entries may reach the logs late
        wait = DEFAULT_LOG_WAIT if _CONTAINER_FAILED in exc.message else 0.0
        try:
            found = self.logs.start_failure(self.service, exc.revision, wait=wait)
        except PlatformError as error:
            self.info(f"the revision's logs could not be read: {error.message}", Stage.CREATE)
            return fallback
        return found.describe() or fallback

    def verify_candidate(self, plan: DeployPlan) -> str | None:
        """None when the candidate passed; else why it failed (a stage result, not raised)."""
        service = self.platform.get_service(self.service)
        url = service.tag_url(CANDIDATE_TAG) if service else None
        if not url:
            raise PlatformError(f"the platform gave no URL for tag '{CANDIDATE_TAG}'")
        if service is not None and service.url:
            self.audiences[audience_of(url)] = audience_of(service.url)
        with self.stage(Stage.VERIFY, url) as stage:
            ok, results = verify(self.client, url, self.health, on_probe=self._probe_info)
            if not ok:
                self.first_failure = time.perf_counter()
                stage.failure = f"{plan.spec.revision}: {results[-1].describe()}"
        return stage.failure

    def _probe_info(self, result: ProbeResult) -> None:
        self.info(f"probe: {result.describe()}", Stage.VERIFY)

    def shift(self, plan: DeployPlan) -> str | None:
        """Each canary step, verified through the tag URL and judged on the request logs
        (deploy/analysis.py); None when all passed."""
        new = plan.spec.revision
        previous = plan.previous_split
        steps = self.options.canary if previous else (100,)
        canary = CanaryJudge.for_deploy(self.logs, self.env, self.service, new, previous)
        for percent in steps:
            with self.stage(Stage.SHIFT, f"{percent}% to {new}") as stage:
                split = _blend(previous, new, percent)
                tags = dict(self.other_tags)
                if percent < 100:
                    tags[CANDIDATE_TAG] = new
                info = self.platform.set_traffic(self.service, split, tags)
                started = time.time()  # the step's window of real requests
                if percent == 100 and not previous:
                    return None
                url = info.tag_url(CANDIDATE_TAG) or info.url  # the new revision itself
                assert url is not None
                ok, results = verify(self.client, url, self.health, on_probe=self._probe_info)
                if not ok:
                    self.first_failure = time.perf_counter()
                    stage.failure = f"at {percent}%: {results[-1].describe()}"
                elif percent < 100:
                    verdict = canary.step(started, info.tag_url(CANDIDATE_TAG))
                    stage.failure = self._judged(verdict, f"at {percent}%", Stage.SHIFT)
            if stage.failure:
                return stage.failure
        return None

    def watch(self, plan: DeployPlan) -> str | None:
        """Probe the new revision (its tag URL) for the watch window, then judge the window's
        requests; None when all passed."""
        window = self.env.watch if self.options.watch is None else self.options.watch
        if window <= 0:
            self.emit(DeployEvent("skip", Stage.WATCH, "no watch window"))
            return None
        service = self.platform.get_service(self.service)
        assert service is not None
        url = service.tag_url(CANDIDATE_TAG) or service.url  # the new revision itself
        assert url is not None
        canary = CanaryJudge.for_deploy(
            self.logs, self.env, self.service, plan.spec.revision, plan.previous_split
        )
        with self.stage(Stage.WATCH, f"{window:g} s") as stage:
            started = time.time()
            deadline = time.monotonic() + window
            while time.monotonic() < deadline:
                result = probe(self.client, url, self.health)
                if not result.ok:
                    self.first_failure = time.perf_counter()
                    stage.failure = f"{plan.spec.revision}: {result.describe()}"
                    break
                time.sleep(min(self.health.interval, max(0.0, deadline - time.monotonic())))
            else:
                verdict = canary.step(started, service.tag_url(CANDIDATE_TAG), window=window)
                stage.failure = self._judged(verdict, "during watch", Stage.WATCH)
        return stage.failure

    def _judged(self, verdict: Verdict, when: str, stage: Stage) -> str | None:
        """Report a canary analysis (deploy/analysis.py); the failure, if it failed."""
        self.info(f"requests: {verdict.message}", stage)
        if verdict.ok:
            return None
        self.first_failure = time.perf_counter()
        return f"{when}: {verdict.message}"

    first_failure: float = 0.0


def _blend(previous: dict[str, int], new: str, percent: int) -> dict[str, int]:
    """``percent`` to ``new``; the rest shared by the previous revisions in proportion."""
    if percent >= 100 or not previous:
        return {new: 100}
    rest = 100 - percent
    total = sum(previous.values())
    split = {rev: pct * rest // total for rev, pct in previous.items()}
    first = next(iter(split))
    split[first] += rest - sum(split.values())
    split = {rev: pct for rev, pct in split.items() if pct}
    split[new] = split.get(new, 0) + percent
    return split


def _access_note(env: ResolvedEnvironment, service: str, public: bool) -> str:
    said, found = ("public", "private") if public else ("private", "public")
    return (
        f"the manifest says {service} is {said} but it is {found}: a deploy does not change "
        f"an existing service's access; `rollsafe drift --env {env.name} --service {service}` "
        "shows the command that does"
    )


#: Cloud Run's words for a container that exited or failed its startup probe
_CONTAINER_FAILED = "failed to start and listen on the port"
#: how long a deploy waits for a failed revision's log entries to arrive
DEFAULT_LOG_WAIT = 10.0


def run_deploy(
    env: ResolvedEnvironment,
    service: str,
    options: DeployOptions,
    *,
    platform: Platform,
    store: SecretStore,
    journal: DeployJournal,
    listener: DeployListener,
    now: Callable[[], float] = time.perf_counter,
    tokens: IdTokens | None = None,
    logs: RevisionLogs | None = None,
) -> DeployResult:
    """Deploy ``service`` to ``env``. Raises only for usage errors; outcomes are results.

    ``logs`` reads a failed revision's log entries (the exit code, the start-up guard's
    CRITICAL line); without it the platform's own message is all a failed start says.

    Probes carry ID tokens from ``tokens`` (default: from where ``platform``'s APIs are,
    impersonating ``options.impersonate_service_account`` if set).
    """
    if service not in env.services:
        raise UsageError(
            f"unknown service '{service}'", hint=f"services: {', '.join(env.services)}"
        )
    _validate(env, options)
    own_tokens = tokens is None
    tokens = tokens or tokens_for(platform, options.impersonate_service_account)
    try:
        return _run_deploy(env, service, options, platform, store, journal, listener, tokens, logs)
    finally:
        if own_tokens:
            tokens.close()


def _run_deploy(
    env: ResolvedEnvironment,
    service: str,
    options: DeployOptions,
    platform: Platform,
    store: SecretStore,
    journal: DeployJournal,
    listener: DeployListener,
    tokens: IdTokens,
    logs: RevisionLogs | None = None,
) -> DeployResult:
    checks = _checks_label(options, env.strict)
    audiences: dict[str, str] = {}  # tag URL origin -> service URL origin, filled at create
    with probe_client(env, service, tokens, audiences) as client:
        run = _Run(env, service, options, platform, store, journal, listener, client, tokens)
        run.audiences = audiences
        run.logs = logs
        if options.dry_run:
            plan = run.make_plan(checks)
            return DeployResult(0, Outcome.DRY_RUN, "nothing was changed", plan)
        record = journal.begin(
            env=env.name,
            service=service,
            checks=checks,
            reason=options.reason,
            image=options.image,
            cwd=env.manifest_path.parent,
            forced=options.force,
        )
        run.record = record
        with journal.lock(env.name, service, record):
            # under the lock: no other machine compensates the same interrupted deploy,
            # and a live deploy (it holds the lock) is never touched
            refused = _reconcile(run)
            result = refused or _pipeline(run, checks)
        assert run.record is not None
        with shielded():  # the outcome is known: a signal now must not leave it unwritten
            run.record = journal.finish(
                run.record,
                result.outcome,
                result.exit_code,
                result.message,
                result.rollback.to_dict() if result.rollback else None,
            )
        result.record = run.record
        return result


def _reconcile(run: _Run) -> DeployResult | None:
    """Close the service's interrupted deploys (from any machine sharing the journal);
    a refusal when the journal cannot be read to do so."""
    from rollsafe.deploy.reconcile import reconcile

    try:
        reconcile(
            run.env, run.service, platform=run.platform, journal=run.journal, listener=run.emit
        )
    except StateUnavailableError as exc:
        message = f"cannot read the journal to reconcile interrupted deploys: {exc.message}"
        return DeployResult(1, Outcome.REFUSED, message + "; nothing was changed", hint=exc.hint)
    return None


def _pipeline(run: _Run, checks: str) -> DeployResult:
    plan: DeployPlan | None = None
    try:
        plan = run.make_plan(checks)
        run.preflight()
        plan = run.plan or plan  # forced checks re-annotate the revision
        run.access(plan)
        run.current_health(plan)
        run.create(plan)
        # each check is a stage result: None passed, else why it failed
        for check in (run.verify_candidate, run.shift, run.watch):
            failure = check(plan)
            if failure is not None:
                stage = run.record.stage if run.record else Stage.VERIFY
                return undo(run, plan, f"verification failed during {stage} ({failure})")
        # verified: a crash from here on finishes the deploy instead of undoing it
        finish = Compensation.restore({plan.spec.revision: 100}, run.other_tags)
        with run.stage(Stage.DONE, compensation=finish):
            run.platform.set_traffic(run.service, {plan.spec.revision: 100}, run.other_tags)
    except _Stop as stop:
        return stop.result
    except Cancelled as cancel:
        return cancelled(run, plan, cancel)
    except StoreError as exc:
        # only plan and preflight read the store: nothing was changed yet
        message = f"deploy stopped before any change: {exc}"
        return DeployResult(1, Outcome.REFUSED, message, plan, hint=exc.hint)
    except (PlatformError, httpx.HTTPError) as exc:
        if plan is None or run.record is None or run.record.compensation is None:
            message = f"deploy stopped before any change: {exc}"
            return DeployResult(1, Outcome.REFUSED, message, plan)
        return undo(run, plan, f"the platform failed during {run.record.stage}: {exc}")
    message = f"{plan.spec.revision} serves 100% of {run.service} in {run.env.name}"
    return DeployResult(0, Outcome.SUCCEEDED, message, plan, run.record, run.report)
