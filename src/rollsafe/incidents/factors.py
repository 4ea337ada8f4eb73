"""Contributing factors (trigger or latent), action items (mitigate, prevent, process) and
what went well, from what the chains reached and the rest of the evidence.

A factor or an action is written only with evidence ids behind it; every action is a real
``rollsafe`` command or a manifest change a reader can apply as written.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from rollsafe.incidents._chain_base import d_, ordered
from rollsafe.incidents._text import fired_at, ids, num, plural, relative, seconds, when
from rollsafe.incidents.chain import Cause, Chains
from rollsafe.incidents.model import (
    Action,
    ActionType,
    Evidence,
    EvidenceKind,
    EvidenceSet,
    Factor,
    FactorType,
    TimelineEntry,
)

__all__ = ["Lessons", "build_lessons"]

K = EvidenceKind
_OFF = (None, False, 0, "0", "off", "0s", "")
#: rules whose values have a fixed shape: ``rollsafe secret rotate`` refuses them
_SHAPED = ("url", "same_origin", "one_of", "regex")


@dataclass
class Lessons:
    factors: list[Factor] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    went_well: list[TimelineEntry] = field(default_factory=list)


def build_lessons(ev: EvidenceSet, chains: Chains) -> Lessons:
    """Factors, action items and what went well for ``ev`` and its ``chains``."""
    return _Lessons(ordered(ev), chains).run()


class _Lessons:
    def __init__(self, ev: EvidenceSet, chains: Chains) -> None:
        self.ev = ev
        self.chains = chains
        self.out = Lessons()
        flag = ""
        if ev.manifest and ev.manifest.rsplit("/", 1)[-1] != "rollsafe.yaml":
            flag = f" -f {shlex.quote(ev.manifest)}"
        self.flags = f"--env {shlex.quote(ev.env)}{flag}"
        self.manifest = ev.manifest or "rollsafe.yaml"

    def causes(self, kind: str) -> list[Cause]:
        return [c for c in self.chains.causes if c.kind == kind]

    def factor(self, kind: FactorType, text: str, *groups: Any) -> None:
        cited = ids(*groups)
        if cited and not any(f.text == text for f in self.out.factors):
            self.out.factors.append(Factor(kind, text, cited))

    def action(self, kind: ActionType, text: str, command: str, *groups: Any) -> None:
        cited = ids(*groups)
        if cited and not any(a.command == command for a in self.out.actions):
            self.out.actions.append(Action(kind, text, command, cited))

    def well(self, moment: float | None, text: str, *groups: Any) -> None:
        cited = ids(*groups)
        if cited and moment is not None:
            self.out.went_well.append(TimelineEntry(moment, text, cited))

    def run(self) -> Lessons:
        self.triggers()
        self.latent()
        self.actions()
        self.good()
        self.out.factors.sort(key=lambda f: (f.type is not FactorType.TRIGGER,))
        order = {ActionType.MITIGATE: 0, ActionType.PREVENT: 1, ActionType.PROCESS: 2}
        self.out.actions.sort(key=lambda a: order[a.type])
        self.out.went_well.sort(key=lambda w: (w.time, w.text))
        return self.out

    # -- factors ------------------------------------------------------------------------

    def in_window(self, moment: Any) -> bool:
        value = num(moment)
        return value is not None and self.ev.since <= value <= self.ev.until

    def triggers(self) -> None:
        """The changes the chains reached; per service, the last one before its first bad
        answer is the trigger and earlier ones are latent (they were there, and it served)."""
        changes: list[tuple[str, float | None, str, tuple[str, ...]]] = []
        for cause in self.causes("secret_version"):
            data = cause.data
            bits = num(data.get("bits"))
            strength = f" (about {bits:.0f} estimated bits)" if bits is not None else ""
            changes.append(
                (
                    cause.service,
                    num(data.get("created")),
                    f"version {data.get('version')} of {data.get('secret')} was added at "
                    f"{when(num(data.get('created')))}{strength}; {data.get('key')} reads it",
                    cause.evidence,
                )
            )
        for cause in [*self.causes("verify_failed"), *self.causes("deploy")]:
            dep = self.deploy(cause.subject)
            if dep is None:
                continue
            started = num(d_(dep, "started")) or dep.time
            if cause.kind == "deploy" and not self.in_window(started):
                continue
            who = f" by {d_(dep, 'user')}" if d_(dep, "user") else ""
            changes.append(
                (
                    cause.service,
                    started,
                    f"deploy {cause.subject}{who} created {cause.data.get('revision')} at "
                    f"{when(started)}",
                    ids([dep]),
                )
            )
        for cause in self.causes("outside_rollsafe"):
            created = num(cause.data.get("created"))
            text = (
                f"revision {cause.subject} was created outside rollsafe at {when(created)} "
                "(no rollsafe.dev/deploy-id annotation), without rollsafe's checks"
            )
            if self.in_window(created):
                changes.append((cause.service, created, text, cause.evidence))
            else:
                self.factor(FactorType.LATENT, text, cause.evidence)
        for service in sorted({c[0] for c in changes}):
            mine = sorted(
                (c for c in changes if c[0] == service), key=lambda c: (c[1] or 0.0, c[2])
            )
            firsts = [s.first for s in self.chains.symptoms if s.service == service and s.first]
            first = min(firsts, default=None)
            before = [c for c in mine if first is None or (c[1] or 0.0) <= first]
            trigger = before[-1] if before else mine[0]
            for change in mine:
                kind = FactorType.TRIGGER if change is trigger else FactorType.LATENT
                self.factor(kind, change[2], change[3])

    def latent(self) -> None:
        for cause in self.causes("latest_mapping"):
            self.factor(
                FactorType.LATENT,
                f"{cause.text}: a new version reaches running instances at their next start, "
                "without a deploy or its checks",
                cause.evidence,
            )
        explained = {(c.service, c.data.get("key")) for c in self.causes("latest_mapping")}
        explained |= {(c.service, c.subject) for c in self.causes("unmapped_secret")}
        for drift in self.ev.by_kind(K.DRIFT):
            kind, key, service = d_(drift, "kind"), d_(drift, "key"), d_(drift, "service")
            if (service, key) in explained:
                continue  # the chain's own factor says it, citing this drift
            if kind == "stale_latest":
                self.factor(
                    FactorType.LATENT,
                    f"{service} maps {key} at `latest` (drift stale_latest, now)",
                    [drift],
                )
            elif kind in ("unmapped_secret", "weak_secret", "missing_in_store", "wrong_secret"):
                self.factor(FactorType.LATENT, f"{service}: drift {kind} for {key} (now)", [drift])
        for cause in self.causes("unmapped_secret"):
            self.factor(FactorType.LATENT, cause.text, cause.evidence)
        for item in self.uncontracted():
            self.factor(
                FactorType.LATENT,
                f"{d_(item, 'revision')} runs without rollsafe's start-up contract (no "
                "ROLLSAFE_CONTRACT): its start-up guard does not check the declared keys and "
                "rules when an instance starts",
                [item],
            )
        for cause in self.causes("checks_skipped"):
            self.factor(FactorType.LATENT, cause.text, cause.evidence)
        for cause in self.causes("manifest_latest"):
            self.factor(FactorType.LATENT, cause.text, cause.evidence)
        for check in self.ev.by_kind(K.CHECK):
            self.factor(
                FactorType.LATENT,
                f"`rollsafe check` finds {d_(check, 'rule')} failing for {d_(check, 'key')}"
                + (f" of {d_(check, 'service')}" if d_(check, "service") else ""),
                [check],
            )
        for man in self.ev.by_kind(K.MANIFEST):
            key, value = d_(man, "key"), d_(man, "value")
            if key == "strict" and value is False:
                self.factor(
                    FactorType.LATENT,
                    f"{self.ev.env} is not strict: findings of `rollsafe check` warn and do "
                    "not block, and `--skip-checks` needs no reason",
                    [man],
                )
            elif key == "monitor.rollback_within" and value in _OFF:
                for service in self.symptomatic(d_(man, "service")):
                    self.factor(
                        FactorType.LATENT,
                        f"the monitor does not roll {service} back in {self.ev.env} "
                        "(monitor.rollback_within: off)",
                        [man],
                    )

    def symptomatic(self, service: Any) -> list[str]:
        """The services (``service``, or any when None) whose users saw the trouble from a
        revision a rollsafe deploy made: the only kind the monitor rolls back."""
        deployed = {d_(e, "revision") for e in self.ev.by_kind(K.REVISION) if d_(e, "deploy_id")}
        seen = {
            s.service for s in self.chains.symptoms if s.kind != "verify" and s.revision in deployed
        }
        return sorted(seen if service is None else seen & {str(service)})

    def uncontracted(self, service: str | None = None) -> list[Evidence]:
        """Revisions that served the symptoms without ``ROLLSAFE_CONTRACT`` (when recorded)."""
        served = {s.revision for s in self.chains.symptoms if s.revision}
        return [
            e
            for e in self.ev.by_kind(K.REVISION)
            if d_(e, "revision") in served
            and e.data.get("contract") is False
            and service in (None, d_(e, "service"))
        ]

    def deploy(self, deploy_id: str) -> Evidence | None:
        return next((e for e in self.ev.by_kind(K.DEPLOY) if d_(e, "deploy_id") == deploy_id), None)

    # -- actions ------------------------------------------------------------------------

    def actions(self) -> None:
        self.secret_actions()
        self.mapping_actions()
        self.verify_actions()
        self.rollback_actions()
        for man in self.ev.by_kind(K.MANIFEST):
            key, value = d_(man, "key"), d_(man, "value")
            if key == "strict" and value is False:
                self.action(
                    ActionType.PREVENT,
                    f"make {self.ev.env} strict: a failing check blocks the deploy, and the "
                    "start-up guard refuses a failing value",
                    f"{self.manifest}: environments.{self.ev.env}.strict: true",
                    [man],
                )
            elif key == "monitor.rollback_within" and value in _OFF:
                for service in self.symptomatic(d_(man, "service")):
                    self.action(
                        ActionType.PREVENT,
                        f"let the monitor roll a fresh deploy of {service} back when it goes down",
                        f"{self.manifest}: services.{service}.monitor.rollback_within: 10m",
                        [man],
                    )
        for gap in self.chains.gaps:
            if "rollsafe monitor" in gap.how:
                cited = [s.evidence for s in self.chains.symptoms if s.text == gap.after]
                self.action(
                    ActionType.PROCESS,
                    "run the monitor: it probes the services, alerts, and records what a "
                    "report measures",
                    f"rollsafe monitor {self.flags}",
                    *cited,
                )
        drift_found = [
            e
            for e in self.ev.by_kind(K.DRIFT)
            if d_(e, "kind") in ("stale_latest", "unmapped_secret", "weak_secret")
        ]
        outside = [c.evidence for c in self.causes("outside_rollsafe")]
        if drift_found or outside:
            self.action(
                ActionType.PROCESS,
                "run drift on a schedule (cron or CI): it names revisions made outside "
                "rollsafe that map `latest` or miss a declared secret",
                f"rollsafe drift {self.flags}",
                drift_found,
                *outside,
            )

    def verify_actions(self) -> None:
        """A deploy whose revision went wrong with no deeper cause on record: what is left
        is to read its change before the next deploy."""
        for cause in [*self.causes("verify_failed"), *self.causes("deploy")]:
            explained = {c.kind for c in self.chains.causes if c.service == cause.service}
            if explained & {"guard", "error_lines", "not_ready", "secret_version"}:
                continue  # the chain reached a cause: its own actions say what to do
            dep = self.deploy(cause.subject)
            revision = cause.data.get("revision") or "the new revision"
            previous = (
                cause.data.get("previous")
                or (d_(dep, "previous_revision") if dep is not None else None)
                or "the serving revision"
            )
            self.action(
                ActionType.PROCESS,
                f"before deploying {cause.service} again, find what made {revision} go wrong: "
                f"the dry run prints the plan and how it differs from {previous}, which serves",
                f"rollsafe deploy {self.flags} --service {shlex.quote(cause.service)} --dry-run",
                cause.evidence,
            )

    def secret_actions(self) -> None:
        guards = {(c.service, c.subject): c for c in self.causes("guard")}
        for cause in self.causes("secret_version"):
            data = cause.data
            secret, key = str(data.get("secret")), str(data.get("key"))
            rules = [
                rule
                for g in guards.values()
                for rule, gkey in g.data.get("failures", [])
                if gkey == key
            ]
            quoted = shlex.quote(secret)
            if any(r.split(":")[0] in _SHAPED for r in rules):
                command = f"rollsafe secret set {quoted} {self.flags} --from-file FILE"
                text = f"add a version of {secret} that passes {', '.join(rules)} for {key}"
            else:
                command = f"rollsafe secret rotate {quoted} {self.flags}"
                text = (
                    f"replace version {data.get('version')} of {secret} with a random value "
                    f"that passes the rules of {key}"
                )
            self.action(ActionType.MITIGATE, text, command, cause.evidence)
            self.action(
                ActionType.PREVENT,
                f"add versions of {secret} only through rollsafe: in a strict environment a "
                "value that fails the rules is refused before it is written",
                f'printf %s "$VALUE" | rollsafe secret set {quoted} {self.flags}',
                cause.evidence,
            )

    def mapping_actions(self) -> None:
        per_service: dict[str, list[Cause]] = {}
        for kind in ("latest_mapping", "unmapped_secret", "outside_rollsafe", "checks_skipped"):
            for cause in self.causes(kind):
                per_service.setdefault(cause.service, []).append(cause)
        for drift in self.ev.by_kind(K.DRIFT):
            if d_(drift, "kind") in ("stale_latest", "unmapped_secret"):
                service = str(d_(drift, "service"))
                per_service.setdefault(service, []).append(
                    Cause(str(d_(drift, "kind")), service, str(d_(drift, "key")), "", (drift.id,))
                )
        for service in sorted(per_service):
            causes = per_service[service]
            unmapped = sorted({c.subject for c in causes if c.kind == "unmapped_secret"})
            latest = sorted(
                {
                    str(c.data.get("key") or c.subject)
                    for c in causes
                    if c.kind in ("latest_mapping", "stale_latest")
                }
            )
            what = []
            if unmapped:
                what.append(f"maps {', '.join(unmapped)}")
            if latest:
                what.append(f"pins {', '.join(latest)} to version numbers")
            bare = self.uncontracted(service)
            if bare:
                what.append("carries the start-up contract (ROLLSAFE_CONTRACT)")
                causes = [*causes, Cause("contract", service, "", "", ids(bare))]
            text = f"deploy {service} through rollsafe: a new revision that " + (
                " and ".join(what) if what else "passes the checks"
            )
            self.action(
                ActionType.MITIGATE,
                text,
                f"rollsafe deploy {self.flags} --service {shlex.quote(service)}",
                *[c.evidence for c in causes],
            )

    def rollback_actions(self) -> None:
        for symptom in self.chains.symptoms:
            if symptom.kind == "verify" or not symptom.revision:
                continue
            revisions = [
                e for e in self.ev.by_kind(K.REVISION) if d_(e, "service") == symptom.service
            ]
            bad = next((r for r in revisions if d_(r, "revision") == symptom.revision), None)
            if bad is None or not d_(bad, "serving"):
                continue
            good = [
                r
                for r in revisions
                if r is not bad
                and d_(r, "ready")
                and not d_(r, "failed")
                and (num(d_(r, "created")) or 0.0) < (num(d_(bad, "created")) or 0.0)
            ]
            if not good:
                continue
            target = good[-1]
            self.action(
                ActionType.MITIGATE,
                f"give {d_(target, 'revision')} all traffic again and verify it",
                f"rollsafe rollback {self.flags} --service {shlex.quote(symptom.service)} "
                f"--to {d_(target, 'revision')}",
                [bad, target],
                symptom.evidence,
            )

    # -- what went well -----------------------------------------------------------------

    def good(self) -> None:
        for cause in self.causes("verify_failed"):
            self.rollback_well(cause)
        for symptom in self.chains.symptoms:
            if (
                symptom.kind == "verify"
                and symptom.count
                and "users were not served"
                in " ".join(w.because for w in self.chains.whys if w.rule == "symptom.verify")
            ):
                self.well(
                    symptom.first,
                    f"users were not served by {symptom.revision}: its "
                    f"{plural(symptom.count, 'failing answer')} arrived on its tag URL",
                    symptom.evidence,
                )
        for dep in self.ev.by_kind(K.DEPLOY):
            if d_(dep, "by_monitor"):
                self.monitor_rollback_well(dep)
        for alert in self.ev.by_kind(K.ALERT):
            fired = fired_at(alert)
            if d_(alert, "event") != "firing" or fired is None:
                continue
            service = d_(alert, "service")
            self.well(
                fired,
                f"alert {d_(alert, 'alertname')} fired for {service}"
                + relative(fired, self.first_bad(service)),
                [alert],
            )
        for cause in self.causes("guard"):
            keys = ", ".join(f"{key} ({rule})" for rule, key in cause.data.get("failures", []))
            self.well(
                cause.data.get("first"),
                f"the start-up guard kept {cause.subject} from serving with a value that "
                f"fails its rules: {keys}",
                cause.evidence,
            )

    def first_bad(self, service: Any) -> float | None:
        """The service's first bad answer: users' 5xx answers or a failing probe."""
        moments = [
            num(d_(r, "first"))
            for r in self.ev.by_kind(K.REQUEST)
            if d_(r, "service") == service and not d_(r, "tag")
        ]
        moments += [
            num(d_(p, "first_failed"))
            for p in self.ev.by_kind(K.PROBE)
            if d_(p, "service") == service
        ]
        return min((m for m in moments if m is not None), default=None)

    def rollback_well(self, cause: Cause) -> None:
        stages = [e for e in self.ev.by_kind(K.STAGE) if d_(e, "deploy_id") == cause.subject]
        verify = next(
            (s for s in stages if d_(s, "ok") is False and d_(s, "stage") != "rollback"), None
        )
        rollback = next((s for s in stages if d_(s, "stage") == "rollback"), None)
        if rollback is None or d_(rollback, "ok") is not True:
            return
        started = num(d_(rollback, "started")) or rollback.time
        took = num(d_(rollback, "seconds"))
        if started is None or took is None:
            return
        back = started + took
        delta = took
        if verify is not None:
            vstart, vsecs = num(d_(verify, "started")), num(d_(verify, "seconds"))
            if vstart is not None and vsecs is not None and back >= vstart + vsecs:
                delta = back - (vstart + vsecs)
        previous = cause.data.get("previous") or "the previous revision"
        self.well(
            back,
            f"traffic was back on {previous} {seconds(delta)} after the verification failed "
            f"(rollback stage: {seconds(took)})",
            [rollback, verify],
        )

    def monitor_rollback_well(self, dep: Evidence) -> None:
        service = d_(dep, "service")
        finished = num(d_(dep, "finished")) or dep.time
        probes = [
            num(d_(p, "first_failed"))
            for p in self.ev.by_kind(K.PROBE)
            if d_(p, "service") == service and d_(p, "first_failed") is not None
        ]
        first = min((p for p in probes if p is not None), default=None)
        after = ""
        if finished is not None and first is not None and finished >= first:
            after = f" {seconds(finished - first)} after the first failing probe"
        target = d_(dep, "revision") or "the previous revision"
        alerts = [
            a for a in self.ev.by_kind(K.ALERT) if d_(a, "service") == service and d_(a, "action")
        ]
        self.well(
            finished,
            f"the monitor rolled {service} back: traffic was back on {target}{after}",
            [dep],
            alerts,
        )
