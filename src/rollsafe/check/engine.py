"""``rollsafe check``: resolve every secret reference in a batch, run every rule."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from rollsafe.check.report import CheckReport
from rollsafe.check.resolve import ACCESS_WORKERS, ResolvedReference, resolve_references
from rollsafe.errors import StoreError, UsageError
from rollsafe.findings import Finding, Severity
from rollsafe.manifest import ResolvedEnvironment, ResolvedService
from rollsafe.rules import RULES, RuleContext, RuleFailure, RuleRef, merge_failures, run_rules
from rollsafe.stores import SecretStore, SecretValue, SecretVersionInfo, VersionUnavailableError

__all__ = ["OtherEnvHashes", "run_check", "select_services"]

#: (environment, service, key) -> SHA-256 hex of that key's value there, or None
OtherEnvHashes = Callable[[str, str, str], str | None]


def select_services(env: ResolvedEnvironment, wanted: Iterable[str] | None) -> list[str]:
    """The services to act on, in manifest order; unknown names are a UsageError."""
    names = list(env.services)
    chosen = list(dict.fromkeys(wanted or ()))
    for name in chosen:
        if name not in env.services:
            close = difflib.get_close_matches(name, names, n=1)
            raise UsageError(
                f"unknown service '{name}'",
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + f"services: {', '.join(names) or '(none)'}",
            )
    return chosen or names


class _Checker:
    def __init__(
        self,
        env: ResolvedEnvironment,
        store: SecretStore,
        other_env_hashes: OtherEnvHashes | None,
        report: CheckReport,
    ) -> None:
        self.env = env
        self.store = store
        self.other = other_env_hashes
        self.report = report
        self.values: dict[tuple[str, int], SecretValue | StoreError] = {}
        self.rule_cache: dict[tuple[str, int, tuple[RuleRef, ...]], list[RuleFailure]] = {}

    def severity(self, *, required: bool = False) -> Severity:
        return Severity.ERROR if required or self.env.strict else Severity.WARNING

    def resolve_refs(
        self, services: list[ResolvedService]
    ) -> dict[tuple[str, str], ResolvedReference]:
        refs = {(s.secret, s.version) for svc in services for s in svc.secrets.values()}
        resolved = resolve_references(self.store, refs, self.report.stats)
        for ref, res in resolved.items():
            self.report.pinned[ref] = res.info.version if res.info else None
        return resolved

    def fetch(self, refs: set[tuple[str, int]]) -> None:
        def access(ref: tuple[str, int]) -> SecretValue | StoreError:
            try:
                return self.store.access(ref[0], str(ref[1]))
            except VersionUnavailableError as exc:
                return exc
            except StoreError as exc:
                if exc.exit_code != 2:  # unreachable store: fail closed, stop the check
                    raise
                return exc

        todo = sorted(refs - set(self.values))
        with ThreadPoolExecutor(ACCESS_WORKERS) as pool:
            self.values.update(zip(todo, pool.map(access, todo), strict=True))
        self.report.stats.values_accessed += len(todo)

    def check_service(
        self, svc: ResolvedService, resolved: dict[tuple[str, str], ResolvedReference]
    ) -> None:
        plain = svc.plain_values()
        for var in svc.env.values():
            source = f"manifest:{var.line}" if var.line else "manifest"
            if not var.value:
                self.add(
                    svc, var.name, "required", "is empty", "set a value", source, var.line, True
                )
                continue
            ctx = self._context(svc, var.name, plain, var.rules, is_secret=False)
            for failure in merge_failures(run_rules(var.value, var.rules, ctx)):
                self.add_failure(svc, var.name, failure, source, var.line)
            self.report.stats.rules_run += len(var.rules)
        for sec in svc.secrets.values():
            self.report.stats.references += 1
            res = resolved[(sec.secret, sec.version)]
            source = res.source
            if res.problem is not None:
                rule, message, hint = res.problem
                self.add(svc, sec.name, rule, message, hint, source, sec.line, True)
                continue
            assert res.info is not None
            value = self.values.get((sec.secret, res.info.version))
            if value is None:
                continue  # no value rules: nothing was fetched
            if isinstance(value, StoreError):
                self.add(
                    svc,
                    sec.name,
                    "version",
                    value.message,
                    value.hint or "",
                    source,
                    sec.line,
                    True,
                )
                continue
            failures = self._secret_failures(svc, sec.name, res.info, value, sec.rules, plain)
            for failure in merge_failures(failures):
                self.add_failure(svc, sec.name, failure, source, sec.line)

    def _secret_failures(
        self,
        svc: ResolvedService,
        key: str,
        info: SecretVersionInfo,
        value: SecretValue,
        rules: tuple[RuleRef, ...],
        plain: dict[str, str],
    ) -> list[RuleFailure]:
        text = value.reveal()
        if not text:
            return [RuleFailure("required", "is empty", "add a version with a value")]
        # the same secret under the same rules gives the same answer in every service
        cacheable = not any(RULES[r.name].refers_to for r in rules)
        cache_key = (info.secret, info.version, rules)
        if cacheable and cache_key in self.rule_cache:
            return self.rule_cache[cache_key]
        ctx = self._context(svc, key, plain, rules, is_secret=True)
        failures = run_rules(text, rules, ctx)
        self.report.stats.rules_run += len(rules)
        if cacheable:
            self.rule_cache[cache_key] = failures
        return failures

    def _context(
        self,
        svc: ResolvedService,
        key: str,
        plain: dict[str, str],
        rules: tuple[RuleRef, ...],
        *,
        is_secret: bool,
    ) -> RuleContext:
        others: dict[str, str | None] = {}
        for ref in rules:
            if RULES[ref.name].refers_to == "env":
                target = str(ref.arg)
                others[target] = self.other(target, svc.name, key) if self.other else None
        return RuleContext(
            env=self.env.name,
            strict=self.env.strict,
            key=key,
            is_secret=is_secret,
            values=plain,
            other_env_hashes=others,
        )

    def add_failure(
        self, svc: ResolvedService, key: str, failure: RuleFailure, source: str, line: int | None
    ) -> None:
        required = failure.rule == "required"  # a missing value blocks everywhere
        self.add(svc, key, failure.rule, failure.message, failure.hint, source, line, required)

    def add(
        self,
        svc: ResolvedService,
        key: str,
        rule: str,
        message: str,
        hint: str,
        source: str,
        line: int | None,
        required: bool,
    ) -> None:
        severity = self.severity(required=required)
        finding = Finding(svc.name, key, rule, severity, message, hint, source, line)
        self.report.findings.append(finding)


def run_check(
    env: ResolvedEnvironment,
    store: SecretStore,
    *,
    services: Iterable[str] | None = None,
    other_env_hashes: OtherEnvHashes | None = None,
) -> CheckReport:
    """Check ``services`` (default: all) of ``env`` against ``store``.

    The store is listed once, each referenced secret's versions once, and each distinct
    version that a rule needs is accessed once, concurrently with a bound. Store problems
    (missing secret, unknown, disabled or destroyed version) become findings; an unreachable
    store raises ``StoreUnavailableError`` (fail closed).
    """
    names = select_services(env, services)
    report = CheckReport(env=env.name, strict=env.strict, services=names)
    checker = _Checker(env, store, other_env_hashes, report)
    chosen = [env.services[name] for name in names]
    resolved = checker.resolve_refs(chosen)
    needed = {
        (sec.secret, res.info.version)
        for svc in chosen
        for sec in svc.secrets.values()
        if sec.rules
        and (res := resolved[(sec.secret, sec.version)]).usable
        and res.info is not None
    }
    checker.fetch(needed)
    for svc in chosen:
        checker.check_service(svc, resolved)
    report.sort()
    return report
