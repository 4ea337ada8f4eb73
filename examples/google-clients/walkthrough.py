"""The emulator through Google's own client libraries only: no rollsafe import.

    GCE_METADATA_HOST=127.0.0.1:PORT GCE_METADATA_IP=127.0.0.1:PORT \
        python examples/google-clients/walkthrough.py http://127.0.0.1:PORT

Creates a secret with two versions, a Cloud Run service whose env reads that secret, waits
for it to be Ready, GETs its URL with an ID token (services are private, as on Cloud Run;
google-auth fetches the token from the emulator's metadata server, which the two variables
point at), splits traffic 50/50 between two revisions and reads the revision's logs. Prints
what it sees; exits non-zero if anything is off.
"""

from __future__ import annotations

import collections
import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import Request
from google.cloud import logging as cloud_logging
from google.cloud import run_v2, secretmanager
from google.oauth2 import id_token

APP = Path(__file__).resolve().parent / "app.py"


class LocalLoggingClient(cloud_logging.Client):  # type: ignore[misc]
    """The logging client, told which resource it runs on.

    Left to itself, each logger it makes asks the GCE metadata server
    (metadata.google.internal) where it runs: off Google Cloud that is a lookup that can
    only fail, and it costs up to seconds. Reading entries needs no answer to it.
    """

    def logger(self, name: str, *, labels: object = None, resource: object = None) -> object:
        resource = resource or cloud_logging.Resource(type="global", labels={})
        return super().logger(name, labels=labels, resource=resource)


def main(endpoint: str) -> int:
    project = f"walkthrough-{uuid.uuid4().hex[:8]}"
    region = "us-central1"
    kwargs = {
        "credentials": AnonymousCredentials(),
        "transport": "rest",
        "client_options": ClientOptions(api_endpoint=endpoint),
    }
    sm = secretmanager.SecretManagerServiceClient(**kwargs)
    services = run_v2.ServicesClient(**kwargs)

    # 1. a secret with two versions
    secret = sm.create_secret(
        parent=f"projects/{project}",
        secret_id="api-token",
        secret={"replication": {"automatic": {}}},
    )
    for value in (b"first-token-value", b"second-token-value"):
        sm.add_secret_version(parent=secret.name, payload={"data": value})
    versions = [v.name.rsplit("/", 1)[-1] for v in sm.list_secret_versions(parent=secret.name)]
    print(f"secret {secret.name}: versions {sorted(versions)}")

    # 2. a service whose env reads that secret; wait until Ready
    def template(greeting: str) -> run_v2.RevisionTemplate:
        return run_v2.RevisionTemplate(
            containers=[
                run_v2.Container(
                    image="example/app",
                    command=["python"],
                    args=[str(APP)],
                    env=[
                        run_v2.EnvVar(name="GREETING", value=greeting),
                        run_v2.EnvVar(
                            name="API_TOKEN",
                            value_source=run_v2.EnvVarSource(
                                secret_key_ref=run_v2.SecretKeySelector(
                                    secret="api-token", version="latest"
                                )
                            ),
                        ),
                    ],
                )
            ]
        )

    parent = f"projects/{project}/locations/{region}"
    operation = services.create_service(
        parent=parent, service_id="hello", service=run_v2.Service(template=template("one"))
    )
    service = operation.result(timeout=120)
    ready = service.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    print(f"service {service.name}: ready={ready} uri={service.uri}")
    first = service.latest_ready_revision.rsplit("/", 1)[-1]

    # 3. GET its URL, with an ID token for it as Cloud Run requires
    token = id_token.fetch_id_token(Request(), service.uri)
    invoke = urllib.request.Request(service.uri, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(invoke, timeout=10) as response:
        body = json.loads(response.read())
    print(f"GET {service.uri} -> {response.status} {body}")

    # 4. a second revision, then traffic 50/50
    service.template = template("two")
    service = services.update_service(service=service).result(timeout=120)
    second = service.latest_ready_revision.rsplit("/", 1)[-1]
    kind = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
    service.traffic = [
        run_v2.TrafficTarget(type_=kind, revision=first, percent=50),
        run_v2.TrafficTarget(type_=kind, revision=second, percent=50),
    ]
    service = services.update_service(service=service).result(timeout=120)
    split = {s.revision: s.percent for s in service.traffic_statuses}
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(100):
        with urllib.request.urlopen(invoke, timeout=10) as response:
            seen[json.loads(response.read())["revision"]] += 1
    print(f"traffic {split}; 100 requests went to {dict(seen)}")

    # 5. the revision's logs
    logs = LocalLoggingClient(
        project=project,
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": endpoint},
    )
    time.sleep(0.5)  # let the last lines reach the log store
    log_filter = (
        'resource.type="cloud_run_revision" '
        f'resource.labels.service_name="hello" resource.labels.revision_name="{second}"'
    )
    entries = list(logs.list_entries(filter_=log_filter, page_size=50, max_results=50))
    print(
        f"{len(entries)} log entries of {second}; first: {entries[0].payload if entries else None}"
    )

    sm.transport.close()
    services.transport.close()
    ok = (
        ready
        and len(versions) == 2
        and split == {first: 50, second: 50}
        and set(seen) == {first, second}
        and bool(entries)
    )
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
