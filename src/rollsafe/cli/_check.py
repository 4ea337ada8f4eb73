"""`check`, `secrets-string`, `schema`, `contract`: reading the manifest and the store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rollsafe.cli._common import (
    EnvOpt,
    FormatOpt,
    ManifestOpt,
    StoreOpt,
    app,
    check_format,
    err,
    guarded,
    out,
)


@app.command()
@guarded
def check(
    env: EnvOpt,
    file: ManifestOpt = Path("rollsafe.yaml"),
    service: Annotated[
        list[str] | None,
        typer.Option("--service", "-s", help="Only this service (repeatable)."),
    ] = None,
    store: StoreOpt = None,
    fmt: FormatOpt = "text",
) -> None:
    """Check every secret and value of an environment against the manifest's rules.

    Exit 0 when nothing blocks, 1 when a finding blocks, 2 on a usage or manifest error.

    Example: rollsafe check --env staging --store dotenv:staging.env
    """
    from rollsafe._environments import store_for
    from rollsafe.check import (
        check_environment,
        render_github,
        render_json,
        render_sarif,
        render_text,
    )
    from rollsafe.manifest import load_manifest

    check_format(fmt)
    manifest = load_manifest(file)
    resolved = manifest.resolve(env)
    with store_for(resolved, store) as secret_store:
        # the very check deploy's preflight runs
        report = check_environment(resolved, secret_store, services=service, manifest=manifest)
    if fmt == "json":
        out.print(render_json(report), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "sarif":
        out.print(render_sarif(report, file), markup=False, highlight=False, soft_wrap=True)
    elif fmt == "github":
        out.print(render_github(report, file), markup=False, highlight=False, soft_wrap=True)
    else:
        out.print(render_text(report))
    raise typer.Exit(report.exit_code)


@app.command("secrets-string")
@guarded
def secrets_string(
    env: EnvOpt,
    service: Annotated[str, typer.Option("--service", "-s", help="The service.")],
    file: ManifestOpt = Path("rollsafe.yaml"),
    resolve: Annotated[
        bool,
        typer.Option("--resolve", help="Pin each `latest` to the store's current version number."),
    ] = False,
    store: StoreOpt = None,
) -> None:
    """Print the value for `gcloud run deploy --set-secrets`: ENV_VAR=secret:VERSION,...

    Example: gcloud run deploy backend --set-secrets "$(rollsafe secrets-string --env
    staging --service backend --resolve)"
    """
    from rollsafe._environments import store_for
    from rollsafe.check import select_services
    from rollsafe.manifest import load_manifest
    from rollsafe.secrets_string import build_secrets_string

    manifest = load_manifest(file)
    resolved = manifest.resolve(env)
    (name,) = select_services(resolved, [service])
    svc = resolved.services[name]
    if resolve:
        with store_for(resolved, store) as secret_store:
            line = build_secrets_string(svc, secret_store)
    else:
        line = build_secrets_string(svc)
    # plain write: exactly the value and a newline, no wrapping or markup
    sys.stdout.write(line + "\n")


@app.command()
@guarded
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of rollsafe.yaml (for editors, via yaml-language-server).

    Example: rollsafe schema -o rollsafe.schema.json, then put
    `# yaml-language-server: $schema=rollsafe.schema.json` at the top of rollsafe.yaml.
    """
    from rollsafe.manifest import manifest_json_schema

    text = json.dumps(manifest_json_schema(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
        err.print(f"wrote {output}")


@app.command()
@guarded
def contract(
    env: EnvOpt,
    service: Annotated[str, typer.Option("--service", "-s", help="The service.")],
    file: ManifestOpt = Path("rollsafe.yaml"),
) -> None:
    """Print a service's start-up contract: its rules for one environment, as one JSON line.

    No values, only which variables exist, plain or secret, and their rules. Set it as
    ROLLSAFE_CONTRACT in the service (rollsafe deploy does) and the start-up guard needs
    no manifest file.

    Example: rollsafe contract --env staging --service backend
    """
    from rollsafe.check import select_services
    from rollsafe.manifest import load_manifest
    from rollsafe.startup.contract import contract_from_service

    resolved = load_manifest(file).resolve(env)
    (name,) = select_services(resolved, [service])
    sys.stdout.write(contract_from_service(resolved, name).to_json() + "\n")
