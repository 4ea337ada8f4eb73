"""``rollsafe drift``: the manifest, the secret store and the serving revisions, three ways.

The order of work keeps the store's read quota in mind (Secret Manager: 600 reads a minute):
read the platform (one ``get_service`` and one ``list_revisions`` per service), list the
store once, list the versions of each referenced secret once, compare, then access each
distinct pinned version once to judge ``weak_secret``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rollsafe.check import select_services
from rollsafe.drift._compare import Comparer, WeakCandidate
from rollsafe.drift._describe import CommandBuilder
from rollsafe.drift._observe import ReadPacer, ServiceView, StoreView, read_platform, read_store
from rollsafe.drift.model import DriftFinding, DriftKind, DriftReport, DriftUnavailableError, Fix
from rollsafe.errors import StoreUnavailableError
from rollsafe.findings import Severity
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform, PlatformError
from rollsafe.rules import RULES, RuleContext, RuleFailure, RuleRef, run_rules
from rollsafe.stores import SecretStore

__all__ = ["GOOGLE_READ_BUDGET", "default_read_budget", "naming_patterns", "run_drift"]

_SEPARATORS = "-_."

#: reads a minute drift allows itself on Google's Secret Manager: the quota is 600 per
#: project, shared with everything else that lists or reads metadata there
GOOGLE_READ_BUDGET = 500


def default_read_budget(store: SecretStore) -> int | None:
    """``GOOGLE_READ_BUDGET`` for Google's Secret Manager; no limit for an emulator or a file."""
    from rollsafe.stores.secretmanager import SecretManagerStore

    if isinstance(store, SecretManagerStore) and not store.endpoint:
        return GOOGLE_READ_BUDGET
    return None


def run_drift(
    env: ResolvedEnvironment,
    store: SecretStore,
    platform: Platform,
    *,
    services: Iterable[str] | None = None,
    reads_per_minute: int | None = None,
) -> DriftReport:
    """Compare ``services`` (default: all) of ``env`` across the manifest, ``store`` and
    ``platform``, and name every difference.

    Orphan secrets are looked for only when every service is compared (with a subset, the
    others' references are unknown). ``reads_per_minute`` paces the store's read requests
    (listings; accesses have a quota of their own): see ``default_read_budget``. An
    unreachable store or platform raises ``DriftUnavailableError`` (exit 2): drift that
    cannot be looked at is not "no drift".
    """
    names = select_services(env, services)
    report = DriftReport(
        env=env.name,
        project=env.gcp_project,
        region=env.region,
        platform=env.platform,
        strict=env.strict,
        services=names,
    )
    try:
        views = read_platform(platform, names, report.calls)
        chosen = [env.services[name] for name in names]
        mapped = {
            ref.secret
            for view in views.values()
            for revision, _ in view.serving
            for ref in revision.secrets.values()
        }
        declared = {sec.secret for svc in chosen for sec in svc.secrets.values()}
        pacer = ReadPacer(reads_per_minute)
        view = read_store(store, declared | mapped, report.calls, pacer)
        report.read_budget, report.paced_seconds = reads_per_minute, pacer.waited
        comparer = Comparer(env, view, CommandBuilder(env), report.findings.append)
        for svc in chosen:
            comparer.service(svc, views[svc.name])
            report.serving[svc.name] = {rev.name: pct for rev, pct in views[svc.name].serving}
        view.fetch(store, {(c.secret, c.version) for c in comparer.weak}, report.calls)
        _judge(env, view, comparer.weak, CommandBuilder(env), report)
        if set(names) == set(env.services):
            _orphans(env, view, views, report)
    except (StoreUnavailableError, PlatformError) as exc:
        raise DriftUnavailableError(
            f"cannot compare: {exc.message}",
            hint=exc.hint or "drift needs to read both the store and the platform",
        ) from exc
    report.sort()
    return report


def _merge(failures: list[RuleFailure]) -> str:
    """``rule: reason, reason; rule: reason``, as ``rollsafe check`` merges them."""
    by_rule: dict[str, list[str]] = {}
    for failure in failures:
        by_rule.setdefault(failure.rule, [])
        if failure.message not in by_rule[failure.rule]:
            by_rule[failure.rule].append(failure.message)
    merged = {rule: ", ".join(messages) for rule, messages in by_rule.items()}
    # machine_secret already says "looks like a placeholder"; the default rule need not repeat it
    said = " ".join(text for rule, text in merged.items() if rule != "not_placeholder")
    if merged.get("not_placeholder", "") in said:
        merged.pop("not_placeholder", None)
    return "; ".join(f"{rule}: {text}" for rule, text in merged.items())


def _judge(
    env: ResolvedEnvironment,
    view: StoreView,
    candidates: list[WeakCandidate],
    commands: CommandBuilder,
    report: DriftReport,
) -> None:
    """``weak_secret``: run each key's rules on the value its serving revision reads.

    Rules that compare with another environment (``differs_from``) are left to ``rollsafe
    check``: they would read other environments' stores. Rule messages never hold a value.
    """
    cache: dict[tuple[str, int, tuple[RuleRef, ...]], list[RuleFailure]] = {}
    severity = Severity.ERROR if env.strict else Severity.WARNING
    for c in candidates:
        value = view.values.get((c.secret, c.version))
        if value is None:
            continue  # unreadable since it was listed; the listing judged its state
        rules = tuple(r for r in c.rules if RULES[r.name].refers_to != "env")
        # the same version under the same rules gives the same answer in every service
        cacheable = not any(RULES[r.name].refers_to for r in rules)
        key = (c.secret, c.version, rules)
        failures = cache.get(key) if cacheable else None
        if failures is None:
            text = value.reveal()
            if not text:
                failures = [RuleFailure("required", "is empty")]
            else:
                ctx = RuleContext(
                    env=env.name,
                    strict=env.strict,
                    key=c.key,
                    is_secret=True,
                    values=c.service.plain_values(),
                )
                failures = run_rules(text, rules, ctx)
            if cacheable:
                cache[key] = failures
        if not failures:
            continue
        svc = c.service.name
        report.findings.append(
            DriftFinding(
                kind=DriftKind.WEAK_SECRET,
                service=svc,
                key=c.key,
                severity=severity,
                message=f"{c.revision} reads version {c.version} of '{c.secret}', which no "
                f"longer passes its rules ({_merge(failures)})",
                manifest=c.manifest,
                store=c.store,
                deployed=c.deployed,
                hint=f"add a new, strong version, then deploy; `{commands.check(svc)}` shows "
                "the details",
                fix=Fix(commands.deploy(svc), commands.add_version(c.secret)),
                source=f"sm://{c.secret}/versions/{c.version}",
                line=c.line,
            )
        )


def _boundary(char: str) -> bool:
    return char == "" or char in _SEPARATORS


def naming_patterns(names: Iterable[str], env: str) -> list[re.Pattern[str]]:
    """The naming pattern of an environment's secrets, learnt from the names it references.

    Where the environment's name appears in a referenced name as a whole word (``{env}`` in
    the manifest's templates: ``jwt-secret-key-staging``), any other word in its place
    matches: ``^.+-staging$``. Prefixes (``staging-db``) and infixes work alike. Names that do
    not carry the environment's name give no pattern.
    """
    patterns: dict[str, re.Pattern[str]] = {}
    for name in names:
        start = 0
        while (i := name.find(env, start)) >= 0:
            start = i + 1
            end = i + len(env)
            before = name[i - 1] if i > 0 else ""
            after = name[end] if end < len(name) else ""
            if not (_boundary(before) and _boundary(after)):
                continue  # part of a longer word: `dev` in `device`
            if not before and not after:
                continue  # the name is the environment itself
            head = f".+{re.escape(before)}" if before else ""
            tail = f"{re.escape(after)}.+" if after else ""
            regex = f"^{head}{re.escape(env)}{tail}$"
            patterns.setdefault(regex, re.compile(regex))
    return list(patterns.values())


def _orphans(
    env: ResolvedEnvironment,
    view: StoreView,
    views: dict[str, ServiceView],
    report: DriftReport,
) -> None:
    """``orphan_secret``: in the store, named like this environment's secrets, used by none."""
    declared = {sec.secret for svc in env.services.values() for sec in svc.secrets.values()}
    mapped = {
        ref.secret
        for service in views.values()
        for revision, _ in service.serving
        for ref in revision.secrets.values()
    }
    # the monitor's receivers keep their URLs and keys in the store too: used, not orphans
    receivers = {s for r in env.alerts for s in (r.url_secret, r.routing_key_secret) if s}
    patterns = naming_patterns(declared, env.name)
    for name in sorted(view.existing - declared - mapped - receivers):
        if not any(p.match(name) for p in patterns):
            continue
        report.findings.append(
            DriftFinding(
                kind=DriftKind.ORPHAN_SECRET,
                service="*",
                key=name,
                severity=Severity.INFO,
                message=f"secret '{name}' is named like this environment's secrets, but no "
                "service declares or maps it",
                manifest=None,
                store={"secret": name, "exists": True},
                deployed=None,
                hint="declare and map it if a service needs it (the incident's JWT secrets sat "
                "in Secret Manager, never mapped), or delete it",
                fix=None,
                source=f"sm://{name}",
            )
        )
