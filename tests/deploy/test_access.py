"""Private and public services through the real CLI on the emulator: ID tokens on probes,
the allUsers binding at creation, refusals before any change, and no token in any output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from rollsafe.platforms.idtoken import IdTokens
from tests.deploy.conftest import ENV, SERVICE, Site

DEPLOY = ("deploy", "--env", ENV, "--service", SERVICE, "--watch", "0")
_PUBLIC = ("    public: false\n", "    public: true\n")


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def minted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ID token rollsafe's code obtains in this test: the canaries to look for."""
    seen: list[str] = []
    original = IdTokens.token

    def recording(self: IdTokens, audience: str) -> str:
        token = original(self, audience)
        seen.append(token)
        return token

    monkeypatch.setattr(IdTokens, "token", recording)
    return seen


@pytest.fixture
def run_client(site: Site) -> Iterator[run_v2.ServicesClient]:
    client = run_v2.ServicesClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=site.endpoint),
    )
    try:
        yield client
    finally:
        client.transport.close()


def _policy_members(client: run_v2.ServicesClient, site: Site) -> dict[str, set[str]]:
    name = f"projects/{site.env.gcp_project}/locations/{site.env.region}/services/{SERVICE}"
    policy = client.get_iam_policy(request={"resource": name})
    return {b.role: set(b.members) for b in policy.bindings}


def _files(root: Path) -> Iterator[Path]:
    yield from (p for p in root.rglob("*") if p.is_file())


def test_private_service_is_verified_with_id_tokens(
    site: Site, minted: list[str], run_client: run_v2.ServicesClient, emulator_dir: Path
) -> None:
    assert site.env.services[SERVICE].public is False
    site.seed()
    text = site.cli(*DEPLOY)
    assert text.exit_code == 0, text.output
    assert "succeeded:" in text.stdout
    # anonymous callers are refused with Cloud Run's 403; a token gets through
    assert site.get("/health", token=False).status_code == 403
    assert site.get("/health").status_code == 200
    assert "roles/run.invoker" not in _policy_members(run_client, site)
    # a second deploy probes the serving revision first (current health), with a token
    again = site.cli(*DEPLOY)
    assert again.exit_code == 0, again.output
    status = site.cli("status", "--env", ENV, "--format", "json")
    assert status.exit_code == 0, status.output
    (svc,) = json.loads(status.stdout)["services"]
    assert svc["health"]["status"] == 200
    history = site.cli("history", "--env", ENV, "--format", "json")
    assert history.exit_code == 0

    # every token names the service URL, even for the candidate's tag URL (Cloud Run always
    # takes the service URL); the first deploy checked it could mint before creating anything
    from google.auth import jwt

    url = site.service().url
    audiences = {jwt.decode(token, verify=False)["aud"] for token in minted}
    assert audiences == {url, f"https://{SERVICE}.invalid"}

    # a token is a credential: none in any output, the journal or any state file
    tokens = set(minted)
    assert tokens, "the probes carried no token"
    outputs = [text.output, again.output, status.output, history.output]
    for token in tokens:
        for output in outputs:
            assert token not in output
        # rollsafe's state (journal) and the emulator's (its request logs among them)
        for path in [*_files(site.state_dir), *_files(emulator_dir)]:
            assert token.encode() not in path.read_bytes(), path
        assert token not in repr(site.tokens)


def test_public_service_gets_the_all_users_binding_at_creation(
    site: Site, run_client: run_v2.ServicesClient
) -> None:
    site.variant(*_PUBLIC)
    site.seed()
    result = site.cli(*DEPLOY, manifest=site.root / "variant.yaml")
    assert result.exit_code == 0, result.output
    assert "allUsers may invoke backend (public: true)" in _flat(result.stdout)
    assert site.get("/health", token=False).status_code == 200
    assert _policy_members(run_client, site)["roles/run.invoker"] == {"allUsers"}


def test_an_existing_service_keeps_its_access_and_drift_names_it(
    site: Site, run_client: run_v2.ServicesClient
) -> None:
    site.baseline()  # private
    site.variant(*_PUBLIC)
    public = site.root / "variant.yaml"
    result = site.cli(*DEPLOY, manifest=public)
    assert result.exit_code == 0, result.output
    assert "a deploy does not change an existing service's access" in _flat(result.stdout)
    assert "roles/run.invoker" not in _policy_members(run_client, site)
    assert site.get("/health", token=False).status_code == 403

    drift = site.cli("drift", "--env", ENV, "--format", "json", manifest=public)
    assert drift.exit_code == 1, drift.output
    (finding,) = [f for f in json.loads(drift.stdout)["findings"] if f["kind"] == "access_mismatch"]
    assert finding["severity"] == "warning"
    assert finding["fix"]["gcloud"] == (
        f"gcloud run services add-iam-policy-binding {SERVICE} --member=allUsers "
        f"--role=roles/run.invoker --region {site.env.region} --project {site.env.gcp_project}"
    )
    text = site.cli("drift", "--env", ENV, manifest=public)
    assert "[access_mismatch]" in _flat(text.stdout)
    # the private manifest agrees with the service: no access finding
    agreed = site.cli("drift", "--env", ENV, "--format", "json")
    kinds = [f["kind"] for f in json.loads(agreed.stdout)["findings"]]
    assert "access_mismatch" not in kinds


@pytest.mark.parametrize("how", ["flag", "env"], ids=["flag", "env"])
def test_impersonated_tokens_verify_a_private_service(
    site: Site,
    how: str,
    minted: list[str],
    monkeypatch: pytest.MonkeyPatch,
    run_client: run_v2.ServicesClient,
) -> None:
    account = "deployer@netra.iam.gserviceaccount.com"
    # as on Cloud Run, the impersonated account may invoke only once it is granted the
    # invoker role: the service exists (deployed with the default identity) and is shared
    site.baseline()
    name = f"projects/{site.env.gcp_project}/locations/{site.env.region}/services/{SERVICE}"
    policy = run_client.get_iam_policy(request={"resource": name})
    policy.bindings.add(role="roles/run.invoker", members=[f"serviceAccount:{account}"])
    run_client.set_iam_policy(request={"resource": name, "policy": policy})
    minted.clear()
    site.seed()
    if how == "flag":
        result = site.cli(*DEPLOY, "--impersonate-service-account", account)
    else:
        monkeypatch.setenv("ROLLSAFE_IMPERSONATE_SERVICE_ACCOUNT", account)
        result = site.cli(*DEPLOY)
    assert result.exit_code == 0, result.output
    from google.auth import jwt

    emails = {jwt.decode(token, verify=False).get("email") for token in minted}
    assert emails == {account}
    for token in minted:
        assert token not in result.output


def test_strict_private_service_without_tokens_is_refused_before_any_change(site: Site) -> None:
    base = site.baseline()
    site.seed()
    # the emulator answers as IAM Credentials does for an account that does not exist
    result = site.cli(*DEPLOY, "--impersonate-service-account", "nobody")
    assert result.exit_code == 1, result.output
    flat = _flat(result.output)
    assert "is private (public: false) and its probes need an ID token" in flat
    assert "nothing was changed" in flat
    assert "hint:" in flat
    assert site.split() == {base: 100}
    assert len(site.revisions()) == 1


def test_token_errors_never_carry_the_vendor_answer(tmp_path: Path) -> None:
    """A metadata server that answers an error quoting a JWT: the error names the failure,
    never the JWT."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    canary = "eyJhbGciOiJSUzI1NiJ9.eyJjYW5hcnkiOnRydWV9.c2lnbmF0dXJlLWNhbmFyeQ"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"internal error for {canary}".encode()
            self.send_response(403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        from rollsafe.platforms.idtoken import IdTokenError

        with IdTokens(emulator=endpoint) as tokens, pytest.raises(IdTokenError) as info:
            tokens.token("http://127.0.0.1:1")
        error = info.value
        assert canary not in str(error)
        assert canary not in repr(error)
        assert "[token]" in str(error)  # the body was quoted, the JWT in it replaced
        assert error.__cause__ is None
        assert "TransportError" in str(error) or "RefreshError" in str(error)
        assert error.hint
        assert "docs/access.md" in error.hint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_google_auth_never_leaves_loopback_on_an_emulator() -> None:
    """Hosts google-auth may ask for go to the emulator; any other host is refused."""
    import requests
    from google.auth.exceptions import TransportError

    from rollsafe.platforms.idtoken import _EmulatorRequest

    with requests.Session() as session:
        request = _EmulatorRequest("http://127.0.0.1:8123", session)
        routed = request.route(
            "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/"
            "default/identity?audience=x"
        )
        assert routed == (
            "http://127.0.0.1:8123/computeMetadata/v1/instance/service-accounts/default/"
            "identity?audience=x"
        )
        iam = (
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/"
            "a@b:generateIdToken"
        )
        assert request.route(iam).startswith("http://127.0.0.1:8123/v1/projects/-/")
        with pytest.raises(TransportError, match=r"refused to reach oauth2\.googleapis\.com"):
            request("https://oauth2.googleapis.com/token", method="POST")


def test_probe_of_a_private_service_says_why_it_was_refused(site: Site) -> None:
    from rollsafe.deploy import probe

    site.baseline()
    url = site.service().url
    assert url is not None
    with httpx.Client() as anonymous:
        result = probe(anonymous, url, site.env.services[SERVICE].health)
    assert result.status == 403
    assert "refused a caller without an ID token" in result.reason


@pytest.mark.parametrize("open_now", [False, True], ids=["private", "open-anyway"])
def test_non_strict_service_without_tokens(site: Site, open_now: bool) -> None:
    """Non-strict: refused while the service is private (anonymous probes could only be
    refused); probed anonymously, with a warning, when the service is open anyway."""
    base = site.baseline()
    if open_now:
        site.platform.set_public(SERVICE, True)
    site.variant("strict: true,", "strict: false,")
    site.seed()
    result = site.cli(
        *DEPLOY, "--impersonate-service-account", "nobody", manifest=site.root / "variant.yaml"
    )
    flat = _flat(result.output)
    if open_now:
        assert result.exit_code == 0, result.output
        assert "the service is open to anyone: probing without a token" in flat
        assert "the manifest says backend is private but it is public" in flat
        assert site.split() != {base: 100}
    else:
        assert result.exit_code == 1, result.output
        assert "nothing was changed" in flat
        assert site.split() == {base: 100}
