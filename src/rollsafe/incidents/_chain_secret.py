"""Rules 3 to 6: a container exit <- the start-up guard <- a secret version <- the mapping
<- where the revision came from."""

from __future__ import annotations

from rollsafe.incidents._chain_base import K, RulesBase, d_, start_, version_number
from rollsafe.incidents._text import num, quote, when
from rollsafe.incidents.model import Evidence


class SecretRules(RulesBase):
    # -- rules 3 to 6: exit <- guard <- secret version <- mapping <- origin -------------

    def explain_exit(
        self,
        effect: str,
        service: str,
        revision: str,
        exits: list[Evidence],
        first_rule: str | None = None,
    ) -> None:
        guards = [
            e
            for e in self.logs_of(revision)
            if isinstance(d_(e, "guard"), dict) and d_(e, "guard").get("failures")
        ]
        if not guards:
            codes = ", ".join(str(c) for c in sorted({int(d_(e, "exit_code")) for e in exits}))
            self.gap(
                after=effect,
                missing=f"why {revision}'s container called exit({codes}): no start-up guard line "
                "in its logs",
                how="install rollsafe's StartupGuard in the service (docs/startup.md) so its "
                "start-up refusals name the rule",
            )
            return
        failures: list[tuple[str, str]] = []
        for guard in guards:
            for failure in d_(guard, "guard").get("failures") or []:
                pair = (str(failure.get("rule")), str(failure.get("key")))
                if pair not in failures:
                    failures.append(pair)
        because = "the start-up guard refused to start: " + "; ".join(
            f"{rule} failed for {key}" for rule, key in failures
        )
        self.link(first_rule or "exit.guard", effect, because, exits, guards)
        self.cause(
            "guard",
            service,
            revision,
            because,
            guards,
            failures=failures,
            first=min((start_(e) for e in guards), default=None),
        )
        at = min((start_(e) for e in [*exits, *guards]), default=None)
        for rule, key in failures:
            self.explain_guard_failure(service, revision, key, rule, at, guards)

    def explain_guard_failure(
        self,
        service: str,
        revision: str,
        key: str,
        rule: str,
        at: float | None,
        guards: list[Evidence],
    ) -> None:
        effect = f"{rule} failed for {key} on {revision}"
        item = self.revisions.get(revision)
        mapping = (d_(item, "secrets") or {}).get(key) if item else None
        secret = mapping.get("secret") if isinstance(mapping, dict) else None
        if secret is None:
            secret = next(
                (
                    s
                    for s, vs in sorted(self.versions.items())
                    if any(key in (d_(v, "env_vars") or []) for v in vs)
                ),
                None,
            )
        if secret is None:
            self.gap(
                after=effect,
                missing=f"where {key}'s value on {revision} comes from",
                how=f"run `rollsafe drift --env {self.ev.env} --service {service}` to compare "
                "the revision with the manifest",
            )
            return
        ref = mapping.get("version") if isinstance(mapping, dict) else None
        versions = self.versions.get(secret, [])
        pinned = version_number(ref)
        chosen: Evidence | None
        if pinned is not None:
            chosen = next((v for v in versions if version_number(d_(v, "version")) == pinned), None)
        else:
            before = [v for v in versions if at is None or (num(d_(v, "created")) or 0.0) <= at]
            chosen = before[-1] if before else (versions[-1] if versions else None)
        if chosen is None:
            self.gap(
                after=effect,
                missing=f"the version history of {secret}",
                how="grant roles/secretmanager.viewer on the secret to who runs `rollsafe why` "
                "(version numbers and times; no value)",
            )
            return
        number = d_(chosen, "version")
        created = num(d_(chosen, "created"))
        bits, length, weak = num(d_(chosen, "bits")), d_(chosen, "length"), d_(chosen, "weak")
        because = f"version {number} of {secret}, created at {when(created)}"
        if bits is not None:
            because += f", has about {bits:.0f} estimated bits"
            if isinstance(length, int):
                because += f" ({length} characters)"
            if weak:
                because += f", below what {rule} asks for {key}"
        checks = [
            c
            for c in self.ev.by_kind(K.CHECK)
            if d_(c, "key") == key and d_(c, "service") in (service, None)
        ]
        drifts = self.of(K.DRIFT, kind="weak_secret", key=key, service=service)
        self.link("guard.secret-version", effect, because, guards, [chosen], checks, drifts)
        self.cause(
            "secret_version",
            service,
            f"{secret}/{number}",
            because,
            [chosen],
            checks,
            drifts,
            secret=secret,
            version=number,
            created=created,
            key=key,
            weak=weak,
            bits=bits,
        )
        if bits is None:
            self.gap(
                after=because,
                missing=f"the strength of version {number} of {secret}",
                how="grant roles/secretmanager.secretAccessor to who runs `rollsafe why`; it "
                "measures length and estimated bits, and never shows the value",
            )
        self.gap(
            after=because,
            missing=f"who added version {number} of {secret}",
            how="enable Secret Manager Data Access audit logs (DATA_WRITE for "
            "secretmanager.googleapis.com): they record the caller of each AddSecretVersion",
        )
        if item is None:
            self.gap(
                after=because,
                missing=f"how {revision} maps {key}",
                how="grant roles/run.viewer to who runs `rollsafe why` so it reads the revision",
            )
            return
        claim = f"version {number} of {secret} reached the instances of {revision}"
        if pinned is None:
            mapped = f"{revision} maps {key} at `latest`"
            because = f"{mapped}: every instance that starts reads the newest version of {secret}"
            stale = self.of(K.DRIFT, kind="stale_latest", key=key, service=service)
            self.link("version.latest", claim, because, [item, chosen], stale)
            self.cause(
                "latest_mapping",
                service,
                f"{revision}/{key}",
                mapped,
                [item],
                stale,
                revision=revision,
                key=key,
                secret=secret,
            )
        else:
            mapped = f"{revision} maps {key} to version {pinned} of {secret}"
            because = mapped
            self.link("version.pinned", claim, because, [item, chosen])
        self.explain_origin(
            mapped, service, revision, key, "latest" if pinned is None else "pinned"
        )

    def explain_origin(self, effect: str, service: str, revision: str, key: str, what: str) -> None:
        """Where ``revision`` came from; ``what``: "latest", "pinned" or "unmapped" (a
        mapping of ``key``), or "revision" (the revision itself)."""
        item = self.revisions.get(revision)
        if item is None:
            self.gap(
                after=effect,
                missing=f"the revision record of {revision} (its deploy annotation)",
                how="grant roles/run.viewer to who runs `rollsafe why`",
            )
            return
        deploy_id = d_(item, "deploy_id")
        if deploy_id is None:
            because = (
                f"revision {revision} was created outside rollsafe "
                "(no rollsafe.dev/deploy-id annotation)"
            )
            self.link("origin.outside", effect, because, [item])
            self.cause(
                "outside_rollsafe",
                service,
                revision,
                because,
                [item],
                created=num(d_(item, "created")),
            )
            self.gap(
                after=because,
                missing=f"who created {revision}, and with which command",
                how="read Cloud Run's Admin Activity audit log (always on): `gcloud logging read "
                f'\'logName:"cloudaudit.googleapis.com%2Factivity" AND '
                f'resource.labels.service_name="{service}"\'`',
            )
            return
        dep = self.deploys.get(str(deploy_id))
        if dep is None:
            self.gap(
                after=effect,
                missing=f"the journal record of deploy {deploy_id}, which created {revision}",
                how="give `rollsafe why` the state store the deploys use (`--state`, "
                "docs/state.md)",
            )
            return
        checks, forced, reason = d_(dep, "checks"), bool(d_(dep, "forced")), d_(dep, "reason")
        user = d_(dep, "user")
        preflight = [
            s for s in self.stages.get(str(deploy_id), []) if d_(s, "stage") == "preflight"
        ]
        if checks in ("skipped", "forced") or forced:
            because = f"deploy {deploy_id} ran with checks {checks or 'forced'}"
            if forced and checks != "forced":
                because += " and --force"
            said = quote(reason)
            because += f", reason {said}" if said else ""
            because += f", by {user}" if user else ""
            self.link("origin.checks-skipped", effect, because, [dep, item], preflight)
            self.cause(
                "checks_skipped",
                service,
                str(deploy_id),
                because,
                [dep],
                preflight,
                reason=reason,
                checks=checks,
                forced=forced,
            )
            return
        manifest = self.manifest_of(f"secrets.{key}", service)
        if what == "latest" and manifest and "latest" in str(d_(manifest[0], "value")):
            because = f"the manifest maps {key} at `latest` ({manifest[0].source})"
            self.link("origin.manifest", effect, because, [dep, item], manifest)
            self.cause("manifest_latest", service, key, because, manifest, key=key)
            return
        because = f"revision {revision} came from deploy {deploy_id}" + (
            f" by {user}" if user else ""
        )
        because += f", checks {checks}" if checks else ""
        self.link("origin.deploy", effect, because, [dep, item])
        self.cause("deploy", service, str(deploy_id), because, [dep], revision=revision)
        if what == "revision":
            return  # the revision's own behaviour, not a mapping: no manifest to look for
        self.gap(
            after=because,
            missing=f"the manifest deploy {deploy_id} read",
            how="deploy from a git checkout: the deploy record keeps git_commit, and `git show "
            "COMMIT:rollsafe.yaml` shows the manifest it read",
        )
