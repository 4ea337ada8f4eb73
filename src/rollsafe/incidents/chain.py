"""The rule base: causal links from recorded evidence to whys, and gaps where it stops.

Each rule links an effect to a cause and is written only when evidence supports it; the
chain is as long as the evidence goes (not always five). One chain starts at each
symptom: a service's bad answers in the request logs (``symptom.requests``), else its
failing probes (``symptom.probes``) or a firing ServiceDown/High5xxRate alert
(``symptom.alert``), a deploy rolled back by its verification (``symptom.verify``), or,
with nothing else, a revision's exits or error lines (``symptom.log``). From there:

- ``no-instance.exit``   the answers <- the revision's container exits (system log)
- ``no-instance.ready``  the answers <- the revision's Ready condition failed
- ``exit.guard``         the exits <- the start-up guard's refusal (its CRITICAL line)
- ``guard.secret-version`` a guard failure for a secret-backed key <- the secret version
  the revision read (the newest created before the first exit when mapped at ``latest``)
- ``version.latest`` / ``version.pinned`` that version reached the instances <- the mapping
- ``origin.outside`` / ``origin.checks-skipped`` / ``origin.manifest`` / ``origin.deploy``
  the mapping or the revision <- where the revision came from
- ``errors.log``         5xx answers <- the revision's error lines
- ``errors.unmapped``    the error lines <- a key the revision does not map (drift)

Where a chain stops, a :class:`Gap` names the missing evidence and how to record it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rollsafe.incidents._chain_base import (
    HTTP_STATUS,
    STATUS,
    Cause,
    Chains,
    K,
    Symptom,
    d_,
    ordered,
    start_,
)
from rollsafe.incidents._chain_status import StatusRules
from rollsafe.incidents._text import ids, num, plural, quote, when
from rollsafe.incidents.model import Evidence, EvidenceSet, Why

__all__ = ["Cause", "Chains", "Symptom", "build_chains", "split_chains"]

_STATE_HOW = "give `rollsafe why` the state store the deploys use (`--state`, docs/state.md)"
_BAD_DEPLOY = ("rolled-back", "failed", "rollback-failed")
_DOWN_ALERTS = ("ServiceDown", "High5xxRate")


def split_chains(whys: Sequence[Why]) -> list[list[Why]]:
    """The whys cut into chains: each starts at a ``symptom.*`` rule."""
    chains: list[list[Why]] = []
    for why in whys:
        if why.rule.startswith("symptom.") or not chains:
            chains.append([])
        chains[-1].append(why)
    return chains


def build_chains(evidence: EvidenceSet) -> Chains:
    """Run the rule base over ``evidence``; deterministic for the same set."""
    return _Rules(ordered(evidence)).run()


class _Rules(StatusRules):
    # -- the run ------------------------------------------------------------------------

    def run(self) -> Chains:
        verified: set[str] = set()
        for dep in sorted(self.deploys.values(), key=lambda e: (e.time or 0.0, e.id)):
            if self.deploy_chain(dep):
                verified.add(str(d_(dep, "service")))
        for service in self.services():
            before = len(self.out.symptoms)
            users = [r for r in self.requests if d_(r, "service") == service and not d_(r, "tag")]
            probes = [p for p in self.of(K.PROBE, service=service) if (d_(p, "failed") or 0) > 0]
            alerts = [
                a
                for a in self.of(K.ALERT, service=service, event="firing")
                if d_(a, "alertname") in _DOWN_ALERTS
            ]
            if users:
                for item in users:
                    self.request_chain(item)
            elif probes:
                self.probe_chain(probes[0], alerts)
            elif alerts:
                self.alert_chain(alerts[0])
            elif service not in verified:
                self.log_chain(service)
            found = self.out.symptoms[before:]
            if (
                found
                and not self.of(K.ALERT, service=service)
                and not self.of(K.PROBE, service=service)
            ):
                self.gap(
                    after=found[0].text,
                    missing=f"an alert or probe record for {service}",
                    how=f"run `rollsafe monitor --env {self.ev.env}`: it probes every service "
                    "and keeps its alerts and probe counts in the state store",
                )
        if not self.out.symptoms:
            self.gap(
                after="the window holds no failed request, probe or alert",
                missing="a symptom to start a chain from",
                how="widen the window (`--since`), keep Cloud Run's request logs, and run "
                f"`rollsafe monitor --env {self.ev.env}` so probes and alerts are recorded",
            )
        return self.out

    def symptom(
        self,
        kind: str,
        service: str,
        revision: str | None,
        status: int | None,
        count: int,
        first: float | None,
        last: float | None,
        tag: bool,
        text: str,
        *groups: Iterable[Any],
    ) -> None:
        self.out.symptoms.append(
            Symptom(kind, service, revision, status, count, first, last, tag, text, ids(*groups))
        )

    def no_request_logs_gap(self, after: str, service: str) -> None:
        if any(key.startswith(f"{service}/") for key in self.ev.requests):
            return
        self.gap(
            after=after,
            missing=f"the request logs of {service} (status codes and counts)",
            how="keep Cloud Run's request log (run.googleapis.com/requests, no exclusion filter "
            "on the _Default sink) and grant roles/logging.viewer to who runs `rollsafe why`",
        )

    def request_chain(self, item: Evidence) -> None:
        service = str(d_(item, "service"))
        status = d_(item, "status")
        count = int(d_(item, "count") or 0)
        first, last = num(d_(item, "first")), num(d_(item, "last"))
        revision = d_(item, "revision") or self.guess_revision(service, first, last)
        paths = d_(item, "paths") or {}
        on = ""
        if paths:
            top = sorted(paths.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            on = " on " + ", ".join(p for p, _ in top)
        served = f" from revision {revision}" if revision else ""
        claim = (
            f"{service} answered {status} to {plural(count, 'request')}{on}{served} "
            f"between {when(first)} and {when(last)}"
        )
        self.symptom(
            "requests", service, revision, status, count, first, last, False, claim, [item]
        )
        self.explain_status(claim, service, revision, status, [item], link_rule="symptom.requests")

    def probe_chain(self, probe: Evidence, alerts: list[Evidence]) -> None:
        service = str(d_(probe, "service"))
        failed, total = int(d_(probe, "failed") or 0), int(d_(probe, "total") or 0)
        first, last = num(d_(probe, "first_failed")), num(d_(probe, "last_failed"))
        statuses = {str(k): int(v) for k, v in (d_(probe, "statuses") or {}).items()}
        numeric = sorted(((v, k) for k, v in statuses.items() if k.isdigit()), reverse=True)
        status = int(numeric[0][1]) if numeric else None
        shown = ", ".join(
            f"{k} ({v})" for k, v in sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        claim = (
            f"the monitor's probes of {service} did not pass {failed} of {total} times between "
            f"{when(first)} and {when(last)}" + (f" (answers: {shown})" if shown else "")
        )
        revision = next((str(d_(a, "revision")) for a in alerts if d_(a, "revision")), None)
        revision = revision or self.guess_revision(service, first, last)
        self.symptom(
            "probes", service, revision, status, failed, first, last, False, claim, [probe], alerts
        )
        self.explain_status(
            claim, service, revision, status, [probe, *alerts], link_rule="symptom.probes"
        )
        self.no_request_logs_gap(claim, service)

    def alert_chain(self, alert: Evidence) -> None:
        service = str(d_(alert, "service"))
        starts = num(d_(alert, "starts_at"))
        summary = quote(d_(alert, "summary"))
        claim = f"alert {d_(alert, 'alertname')} fired for {service} at {when(starts)}"
        claim += f": {summary}" if summary else ""
        revision = d_(alert, "revision") or self.guess_revision(
            service, starts, num(d_(alert, "ends_at"))
        )
        self.symptom(
            "alert",
            service,
            revision,
            None,
            1,
            starts,
            num(d_(alert, "ends_at")),
            False,
            claim,
            [alert],
        )
        self.explain_status(claim, service, revision, None, [alert], link_rule="symptom.alert")
        self.no_request_logs_gap(claim, service)

    def log_symptom(self, service: str, revision: str, claim: str, mine: list[Evidence]) -> None:
        """A symptom seen in one revision's log lines only (no request evidence)."""
        count = sum(int(d_(e, "count") or 1) for e in mine)
        last = num(d_(mine[-1], "last"))
        self.symptom(
            "log", service, revision, None, count, start_(mine[0]), last, False, claim, mine
        )

    def log_chain(self, service: str) -> None:
        logs = [e for e in self.logs if d_(e, "service") == service and d_(e, "revision")]
        exits = [e for e in logs if d_(e, "exit_code") is not None]
        errors = [e for e in logs if self.is_error_line(e)]
        if exits:
            revision = str(d_(exits[0], "revision"))
            mine = [e for e in exits if d_(e, "revision") == revision]
            claim = self.exit_text(revision, mine)
            self.log_symptom(service, revision, claim, mine)
            if self.once(revision, "exit"):
                self.explain_exit(claim, service, revision, mine, first_rule="symptom.log")
        elif errors:
            revision = str(d_(errors[0], "revision"))
            mine = [e for e in errors if d_(e, "revision") == revision]
            claim = self.errors_text(revision, mine)
            self.log_symptom(service, revision, claim, mine)
            self.explain_errors(claim, service, revision, mine, first_rule="symptom.log")
        else:
            return
        self.no_request_logs_gap(self.out.symptoms[-1].text, service)

    def deploy_chain(self, dep: Evidence) -> bool:
        outcome = d_(dep, "outcome")
        # a rollback's own record (checks "rollback") is a resolution, not a symptom
        if outcome not in _BAD_DEPLOY or d_(dep, "by_monitor") or d_(dep, "checks") == "rollback":
            return False
        did, service, revision = (
            str(d_(dep, "deploy_id")),
            str(d_(dep, "service")),
            d_(dep, "revision"),
        )
        stages = self.stages.get(did, [])
        bad = next(
            (s for s in stages if d_(s, "ok") is False and d_(s, "stage") != "rollback"), None
        )
        tags = [
            r for r in self.requests if d_(r, "tag") and d_(r, "revision") == revision and revision
        ]
        users = [
            r
            for r in self.requests
            if not d_(r, "tag") and d_(r, "revision") == revision and revision
        ]
        what = "was rolled back" if outcome == "rolled-back" else f"ended {outcome}"
        claim = f"deploy {did} of {revision or 'a new revision'} in {service} {what}"
        said = quote(d_(bad, "detail")) if bad is not None else None
        if bad is not None:
            claim += f": its {d_(bad, 'stage')} stage did not pass" + (f" ({said})" if said else "")
        status: int | None = None
        if tags:
            counts: dict[int, int] = {}
            for item in tags:
                counts[int(d_(item, "status"))] = counts.get(int(d_(item, "status")), 0) + int(
                    d_(item, "count") or 0
                )
            status = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            shown = ", ".join(str(s) for s in sorted(counts))
            paths: dict[str, int] = {}
            for item in tags:
                for path, n in (d_(item, "paths") or {}).items():
                    paths[str(path)] = paths.get(str(path), 0) + int(n)
            on = " on " + ", ".join(sorted(paths)[:3]) if paths else ""
            because = (
                f"the new revision {revision} answered {shown}{on} on its tag URL during "
                f"verification ({plural(sum(counts.values()), 'request')})"
            )
            if not users:
                because += "; users were not served by it"
        elif bad is not None and d_(bad, "detail"):
            detail = str(d_(bad, "detail"))
            found = HTTP_STATUS.search(detail) or STATUS.search(detail)
            status = int(found.group(1)) if found else None
            stage = d_(bad, "stage")
            during = "verification" if stage == "verify" else f"its {stage} stage"
            answered = f"answered {status}" if status else "did not pass"
            because = f"the new revision {revision} {answered} during {during}"
        elif any(
            d_(e, "by_monitor") and d_(e, "service") == service for e in self.deploys.values()
        ):
            return False  # the monitor rolled it back: its alert and the answers make the chain
        else:
            self.gap(
                after=claim,
                missing=f"why deploy {did} {what}: no failing stage is in its journal record",
                how=_STATE_HOW,
            )
            return False
        self.link("symptom.verify", claim, because, [dep, bad], tags)
        first = min((start_(t) for t in tags), default=num(d_(bad, "started")) if bad else None)
        self.symptom(
            "verify",
            service,
            revision,
            status,
            sum(int(d_(t, "count") or 0) for t in tags),
            first,
            max((num(d_(t, "last")) or 0.0 for t in tags), default=None),
            True,
            claim,
            [dep, bad],
            tags,
        )
        self.cause(
            "verify_failed",
            service,
            did,
            because,
            [dep, bad],
            tags,
            revision=revision,
            previous=d_(dep, "previous_revision"),
            outcome=outcome,
        )
        if revision:
            self.explain_status(because, service, str(revision), status, [dep, bad, *tags])
        return True
