"""Secret Manager's side: the versions of the secrets the services use, and how strong.

For every secret the manifest declares or a relevant revision maps: the versions created up
to the window's end (the newest 5, and every one created in the window). The versions that
matter are read (accessed): those created in the window, the one ``latest`` pointed at when
the window began, and those a revision pins. Of a value only its length, character classes
and estimated bits are kept, and whether the manifest's rules for that key refuse it; the
value itself goes to the ``Scrubber`` (so no excerpt quotes it) and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rollsafe.errors import StoreError
from rollsafe.incidents._gather import Pile, Scrubber, reading, seconds, when
from rollsafe.incidents._run_evidence import RunView
from rollsafe.incidents.model import EvidenceKind
from rollsafe.manifest import ResolvedEnvironment
from rollsafe.rules import RULES, RuleContext, RuleRef, estimate_secret_strength, run_rules
from rollsafe.stores import SecretNotFoundError, SecretStore, SecretVersionInfo

__all__ = ["add_secrets"]

#: versions kept per secret besides those created in the window
_NEWEST = 5


@dataclass
class _Use:
    """How the services use one secret: env vars, the manifest's rules, pinned versions."""

    env_vars: set[str] = field(default_factory=set)
    #: (service, key, rules) for each manifest declaration
    rules: list[tuple[str, str, tuple[RuleRef, ...]]] = field(default_factory=list)
    pinned: set[int] = field(default_factory=set)


def _uses(
    env: ResolvedEnvironment, services: Sequence[str], view: RunView, pile: Pile
) -> dict[str, _Use]:
    uses: dict[str, _Use] = {}
    for name in services:
        svc = env.services[name]
        for sec in svc.secrets.values():
            use = uses.setdefault(sec.secret, _Use())
            use.env_vars.add(sec.name)
            use.rules.append((name, sec.name, sec.rules))
            if sec.version.isdigit():
                use.pinned.add(int(sec.version))
        for rev in view.relevant(name, pile.since, pile.until):
            for var, ref in rev.secrets.items():
                use = uses.setdefault(ref.secret, _Use())
                use.env_vars.add(var)
                if ref.version.isdigit():
                    use.pinned.add(int(ref.version))
    return uses


def _kept(
    versions: list[SecretVersionInfo], use: _Use, since: float, until: float
) -> list[SecretVersionInfo]:
    """The versions created up to ``until``: the newest 5, those created in the window, the
    one ``latest`` was when it began, and those a revision or the manifest pins."""
    before = [v for v in versions if (seconds(v.create_time) or 0.0) <= until]
    newest = sorted(before, key=lambda v: v.version)[-_NEWEST:]
    in_window = [v for v in before if since <= (seconds(v.create_time) or 0.0)]
    pinned = [v for v in before if v.version in use.pinned]
    # what ``latest`` resolved to when the window began
    earlier = [v for v in before if (seconds(v.create_time) or 0.0) < since]
    at_start = [max(earlier, key=lambda v: v.version)] if earlier else []
    chosen = {v.version: v for v in (*newest, *in_window, *pinned, *at_start)}
    return sorted(chosen.values(), key=lambda v: v.version)


def _to_read(kept: list[SecretVersionInfo], use: _Use, since: float) -> set[int]:
    at_start = [v.version for v in kept if (seconds(v.create_time) or 0.0) < since]
    wanted = {v.version for v in kept if (seconds(v.create_time) or 0.0) >= since}
    if at_start:
        wanted.add(max(at_start))
    return wanted | (use.pinned & {v.version for v in kept})


def _weak(env: ResolvedEnvironment, use: _Use, text: str) -> tuple[bool | None, list[str]]:
    """Whether the manifest's rules for a key mapped to this secret refuse ``text``, and the
    rules that do (rules comparing with other environments are left to ``rollsafe check``)."""
    judged = False
    failed: list[str] = []
    for service, key, rules in use.rules:
        local = tuple(r for r in rules if RULES[r.name].refers_to != "env")
        if not local:
            continue
        judged = True
        ctx = RuleContext(
            env=env.name,
            strict=env.strict,
            key=key,
            is_secret=True,
            values=env.services[service].plain_values(),
        )
        for failure in run_rules(text, local, ctx):
            if failure.rule not in failed:
                failed.append(failure.rule)
    return (bool(failed) if judged else None), failed


def _measure(
    env: ResolvedEnvironment,
    store: SecretStore,
    info: SecretVersionInfo,
    use: _Use,
    scrub: Scrubber,
) -> dict[str, Any]:
    """Length, classes, bits and weakness of one version; its value only in this frame."""
    try:
        text = store.access(info.secret, str(info.version)).reveal()
    except StoreError as exc:
        if exc.exit_code == 1:  # unreachable: the caller notes it
            raise
        return {}
    scrub.add(text)
    strength = estimate_secret_strength(text)
    weak, failed = _weak(env, use, text)
    del text
    return {
        "length": strength.length,
        "bits": round(strength.bits, 1),
        "classes": list(strength.classes),
        "weak": weak,
        "failed_rules": failed,
    }


def _excerpt(info: SecretVersionInfo, facts: dict[str, Any]) -> str:
    text = f"version {info.version} of {info.secret} created {when(seconds(info.create_time))}"
    text += f", {info.state.value}"
    if facts.get("length") is not None:
        classes = "+".join(facts["classes"]) or "none"
        text += f"; {facts['length']} characters ({classes}), about {facts['bits']:.0f} bits"
        if facts.get("weak"):
            text += f"; refused by {', '.join(facts['failed_rules'])}"
    return text


def add_secrets(
    env: ResolvedEnvironment,
    store: SecretStore,
    services: Sequence[str],
    view: RunView,
    pile: Pile,
    scrub: Scrubber,
) -> None:
    """``secret_version`` evidence (``sm://SECRET/versions/N``) of the services' secrets."""
    for secret, use in sorted(_uses(env, services, view, pile).items()):
        with reading(pile, f"Secret Manager secret {secret}"):
            try:
                versions = store.list_versions(secret)
            except SecretNotFoundError:
                continue  # drift and check say it is missing
            kept = _kept(versions, use, pile.since, pile.until)
            read = _to_read(kept, use, pile.since)
            for info in kept:
                facts: dict[str, Any] = {}
                if info.version in read and info.state.value == "ENABLED":
                    facts = _measure(env, store, info, use, scrub)
                pile.add(
                    EvidenceKind.SECRET_VERSION,
                    seconds(info.create_time),
                    info.source,
                    _excerpt(info, facts),
                    {
                        "secret": info.secret,
                        "version": info.version,
                        "created": seconds(info.create_time),
                        "state": info.state.value,
                        "length": facts.get("length"),
                        "bits": facts.get("bits"),
                        "classes": facts.get("classes"),
                        "weak": facts.get("weak"),
                        "env_vars": sorted(use.env_vars),
                    },
                )
