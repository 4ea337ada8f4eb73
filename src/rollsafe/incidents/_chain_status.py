"""Rules 2 and 7: bad answers <- container exits, a failed Ready condition, or error lines
<- a key the revision does not map."""

from __future__ import annotations

import re
from typing import Any

from rollsafe.incidents._chain_base import K, d_, mentions, start_
from rollsafe.incidents._chain_secret import SecretRules
from rollsafe.incidents._text import num, plural, quote, when
from rollsafe.incidents.model import Evidence

_ERROR_SEVERITIES = ("ERROR", "CRITICAL", "ALERT", "EMERGENCY")
_SIGNAL = re.compile(r"\bterminated on signal \d+|\bsignal \d+", re.I)


class StatusRules(SecretRules):
    # -- rule 2 and 7: why the answers were bad -----------------------------------------

    def explain_status(
        self,
        effect: str,
        service: str,
        revision: str | None,
        status: Any,
        cited: list[Any],
        *,
        link_rule: str | None = None,
    ) -> None:
        """Write the first link under ``effect``; ``link_rule`` names it when it starts a chain."""
        if revision is None:
            if link_rule:
                self.link(link_rule, effect, "the revision that served them is not recorded", cited)
            self.gap(
                after=effect,
                missing="which revision served the answers",
                how="keep Cloud Run's request log with its revision_name label "
                "(run.googleapis.com/requests)",
            )
            return
        code = status if isinstance(status, int) else None
        steps = (
            (self.by_errors, self.by_exit, self.by_ready)
            if code == 500
            else (self.by_exit, self.by_ready, self.by_errors)
        )
        for step in steps:
            if step(effect, service, revision, cited, link_rule):
                return
        item = self.revisions.get(revision)
        if link_rule:
            self.link(
                link_rule,
                effect,
                f"revision {revision} served them",
                cited,
                [item],
            )
        if code == 500:
            self.gap(
                after=effect,
                missing=f"error lines of {revision} that say why it answered 500",
                how="log errors on stderr as JSON lines with severity ERROR, so Cloud Logging "
                "keeps them with the revision",
            )
        elif item is not None and d_(item, "ready") and not d_(item, "failed"):
            self.gap(
                after=effect,
                missing=f"why {revision} answered {code or 'wrongly'} while ready: no exit and "
                "no error line of it in the window",
                how="have the service log why it answers 5xx (a failing check of rollsafe's "
                "StartupGuard names its key and rule in the /health body: log it at ERROR on "
                "stderr too)",
            )
        else:
            self.gap(
                after=effect,
                missing=f"container exits or a failed Ready condition of {revision}",
                how="keep run.googleapis.com/varlog/system (no exclusion filter on the _Default "
                "sink) and grant roles/run.viewer to who runs `rollsafe why`",
            )
        if link_rule and item is not None and self.once(revision, "origin"):
            # the chain stops at the revision: where it came from is still a recorded fact
            self.explain_origin(
                f"revision {revision} served them", service, revision, "", "revision"
            )

    def exit_text(self, revision: str, exits: list[Evidence]) -> str:
        codes = sorted({int(d_(e, "exit_code")) for e in exits})
        count = sum(int(d_(e, "count") or 1) for e in exits)
        last = max((num(d_(e, "last")) or start_(e) for e in exits), default=None)
        return (
            f"the container of {revision} called exit({', '.join(map(str, codes))}) "
            f"{plural(count, 'time')} between {when(start_(exits[0]))} and {when(last)}"
        )

    def by_exit(
        self, effect: str, service: str, revision: str, cited: list[Any], rule: str | None
    ) -> bool:
        exits = [e for e in self.logs_of(revision) if d_(e, "exit_code") is not None]
        if not exits:
            return False
        first_exit = start_(exits[0])
        # a running instance that was stopped (a restart, a new secret version read at the
        # next start) is why the first answers failed before any exit was logged
        stops = [
            e
            for e in self.logs_of(revision)
            if d_(e, "exit_code") is None
            and _SIGNAL.search(str(d_(e, "text") or ""))
            and start_(e) <= first_exit
        ]
        if stops:
            stop = stops[-1]
            said = quote(d_(stop, "text"))
            because = (
                f"no instance of {revision} was ready: the running instance stopped at "
                f"{when(start_(stop))}"
                + (f" ({said})" if said else "")
                + ", and then "
                + self.exit_text(revision, exits)
            )
        else:
            because = self.exit_text(revision, exits) + ", so no instance was ready to answer"
        self.link(rule or "no-instance.exit", effect, because, cited, stops[-1:], exits)
        self.cause(
            "exit",
            service,
            revision,
            because,
            exits,
            codes=sorted({int(d_(e, "exit_code")) for e in exits}),
        )
        if self.once(revision, "exit"):
            self.explain_exit(because, service, revision, exits)
        return True

    def by_ready(
        self, effect: str, service: str, revision: str, cited: list[Any], rule: str | None
    ) -> bool:
        item = self.revisions.get(revision)
        if item is None or not (d_(item, "failed") or d_(item, "ready") is False):
            return False
        message = quote(d_(item, "message"))
        because = f"revision {revision} was not ready" + (f": {message}" if message else "")
        self.link(rule or "no-instance.ready", effect, because, cited, [item])
        self.cause("not_ready", service, revision, because, [item])
        if self.once(revision, "ready"):
            self.gap(
                after=because,
                missing=f"the start-up lines of {revision}'s container",
                how="keep run.googleapis.com/varlog/system and the container's stderr, and install "
                "rollsafe's StartupGuard in the service (docs/startup.md) so a refusal names "
                "the rule",
            )
        return True

    def is_error_line(self, item: Evidence) -> bool:
        severity = str(d_(item, "severity") or "").upper()
        return (
            severity in _ERROR_SEVERITIES
            and d_(item, "exit_code") is None
            and d_(item, "guard") is None
        )

    def errors_text(self, revision: str, errors: list[Evidence]) -> str:
        count = sum(int(d_(e, "count") or 1) for e in errors)
        last = max((num(d_(e, "last")) or start_(e) for e in errors), default=None)
        sample = next((q for q in (quote(d_(e, "text")) for e in errors) if q), None)
        such = f" such as {sample}" if sample else ""
        return (
            f"{revision} logged {plural(count, 'error line')}{such} between "
            f"{when(start_(errors[0]))} and {when(last)}"
        )

    def by_errors(
        self, effect: str, service: str, revision: str, cited: list[Any], rule: str | None
    ) -> bool:
        errors = [e for e in self.logs_of(revision) if self.is_error_line(e)]
        if not errors:
            return False
        errors.sort(key=lambda e: (-int(d_(e, "count") or 1), start_(e), e.id))
        errors = errors[:3]
        because = self.errors_text(revision, errors)
        self.link(rule or "errors.log", effect, because, cited, errors)
        self.cause("error_lines", service, revision, because, errors)
        if self.once(revision, "errors"):
            self.explain_errors(because, service, revision, errors)
        return True

    def explain_errors(
        self,
        effect: str,
        service: str,
        revision: str,
        errors: list[Evidence],
        first_rule: str | None = None,
    ) -> None:
        texts = [str(d_(e, "text") or "") for e in errors]
        item = self.revisions.get(revision)
        mapped = dict(d_(item, "secrets") or {}) if item else {}
        keys: dict[str, list[Evidence]] = {}
        for drift in self.of(K.DRIFT, kind="unmapped_secret", service=service):
            keys.setdefault(str(d_(drift, "key")), []).append(drift)
        for man in self.of(K.MANIFEST):
            if d_(man, "service") not in (service, None):
                continue
            key = str(d_(man, "key") or "")
            if item is not None and key.startswith("secrets.") and key[8:] not in mapped:
                keys.setdefault(key[8:], [])
        wrote = False
        for key in sorted(keys):
            if key in mapped or not mentions(texts, key):
                continue
            manifest = self.manifest_of(f"secrets.{key}", service)
            if not keys[key] and item is None:
                continue
            because = f"{revision} does not map {key}" + (
                " (drift unmapped_secret)"
                if keys[key]
                else f" (the manifest declares it: {manifest[0].source})"
                if manifest
                else ""
            )
            rule = first_rule or "errors.unmapped"
            first_rule = None
            self.link(rule, effect, because, errors, keys[key], [item] if item else [], manifest)
            self.cause(
                "unmapped_secret",
                service,
                key,
                because,
                keys[key],
                [item],
                manifest,
                revision=revision,
            )
            self.explain_origin(because, service, revision, key, "unmapped")
            wrote = True
        if not wrote:
            self.gap(
                after=effect,
                missing="which setting the error lines are about",
                how=f"run `rollsafe drift --env {self.ev.env} --service {service}`, and have the "
                "service name the missing setting in its error line, or install rollsafe's "
                "StartupGuard (docs/startup.md) so a missing declared key stops the start "
                "with its name",
            )
