"""Preflight is `rollsafe check`: same inputs, same findings, `differs_from` included.

The example's strict ``staging`` says its SERVICE_SECRET must differ from ``dev``'s; both
environments are ``platform: local`` on one project of the emulator, so the other value is
read through the emulator's Secret Manager and compared by digest.
"""

from __future__ import annotations

import json
import secrets

import pytest

from rollsafe.findings import Severity
from rollsafe.manifest import ResolvedEnvironment, load_manifest
from tests.deploy.conftest import ENV, SERVICE, Site

_RULE = 'SERVICE_SECRET: {secret: "service-secret-{env}", rules: [machine_secret]}'
_DEV = "dev:     {platform: local, strict: false}"


def _differs_from_dev(site: Site) -> ResolvedEnvironment:
    """The site's manifest with ``differs_from: dev`` on SERVICE_SECRET, dev on its project."""
    text = site.manifest.read_text(encoding="utf-8")
    assert _RULE in text
    assert _DEV in text
    text = text.replace(
        _RULE, _RULE.replace("[machine_secret]", "[machine_secret, {differs_from: dev}]")
    )
    text = text.replace(_DEV, _DEV[:-1] + f", gcp_project: {site.env.gcp_project}}}")
    site.manifest.write_text(text, encoding="utf-8")
    return load_manifest(site.manifest).resolve(ENV)


@pytest.mark.parametrize("same", [False, True], ids=["differing-values", "equal-values"])
def test_strict_deploy_with_differs_from(site: Site, same: bool) -> None:
    env = _differs_from_dev(site)
    staging = site.seed()["service-secret-staging"]
    dev = staging if same else secrets.token_urlsafe(48)
    site.store.add_version("service-secret-dev", dev)
    site.values.append(dev)

    result = site.deploy(env)

    assert result.report is not None
    rules = [(f.key, f.rule, f.severity) for f in result.report.findings]
    if not same:
        assert result.exit_code == 0, result.message
        assert rules == []
        return
    assert result.exit_code == 1, result.message
    assert result.outcome == "refused"
    assert rules == [("SERVICE_SECRET", "differs_from", Severity.ERROR)]
    (finding,) = result.report.findings
    assert finding.message == "has the same value as in dev"
    assert site.platform.get_service(SERVICE) is None  # nothing was changed


@pytest.mark.parametrize("same", [False, True], ids=["differing-values", "equal-values"])
def test_check_and_preflight_give_the_same_findings(site: Site, same: bool) -> None:
    env = _differs_from_dev(site)
    site.weaken()  # findings of their own: a weak SERVICE_SECRET, a short JWT key
    staging = site.values[-2] if same else secrets.token_urlsafe(48)
    site.store.add_version("service-secret-dev", staging)

    checked = site.cli("check", "--env", ENV, "--service", SERVICE, "--format", "json")
    result = site.deploy(env)

    assert result.exit_code == 1
    assert result.report is not None
    from_check = json.loads(checked.stdout)
    assert checked.exit_code == 1, checked.stdout
    assert from_check["findings"] == result.report.to_dict()["findings"]
    assert any(f["rule"] == "differs_from" for f in from_check["findings"]) is same
    for value in site.values:
        assert value not in checked.stdout
