"""gcloud configurations that point ``gcloud`` at the emulator.

gcloud keeps its properties in ``CLOUDSDK_CONFIG`` (default ``~/.config/gcloud``):
``active_config`` names the configuration, ``configurations/config_NAME`` holds it as INI
sections (``[core]``, ``[api_endpoint_overrides]`` ...). ``write_gcloud_config`` writes the
``default`` configuration of a directory of its own, so the user's gcloud setup is never
touched; ``export CLOUDSDK_CONFIG=DIR`` selects it.

What the properties do:

- ``api_endpoint_overrides/*``: Cloud Run, Secret Manager, Logging and IAM Credentials at
  the emulator. For Cloud Run, gcloud derives the regional host ``REGION-127.0.0.1:PORT``.
- ``proxy/*``: the emulator is also gcloud's HTTP proxy. A regional host needs no DNS that
  way: gcloud sends ``GET http://REGION-127.0.0.1:PORT/...`` to the proxy, and the emulator
  answers it itself. It answers only for its own hosts and refuses everything else (502, or
  403 for ``CONNECT``): with this configuration gcloud cannot reach anything but the emulator.
- ``auth/disable_credentials``: no login, no token; the emulator has no IAM on its APIs.
- usage reporting, update checks, surveys and the GCE metadata probe are off: they would
  only try to leave the machine.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from urllib.parse import urlsplit

from rollsafe.errors import UsageError

__all__ = ["CONFIG_NAME", "ENDPOINT_APIS", "gcloud_properties", "write_gcloud_config"]

CONFIG_NAME = "default"
#: the APIs the emulator serves, by gcloud's ``api_endpoint_overrides`` name
ENDPOINT_APIS = ("run", "secretmanager", "logging", "iamcredentials")


def gcloud_properties(
    endpoint: str, project: str | None = None, region: str | None = None
) -> dict[str, dict[str, str]]:
    """The properties, by section, that aim gcloud at the emulator at ``endpoint``."""
    parts = urlsplit(endpoint)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
        raise UsageError(
            f"gcloud can be pointed only at a loopback emulator (http://127.0.0.1:PORT), "
            f"not {endpoint}",
            hint="start one with `rollsafe emulator start`, or unset ROLLSAFE_GCP_ENDPOINT",
        )
    base = f"http://127.0.0.1:{parts.port}/"
    core = {
        "disable_usage_reporting": "true",
        "check_gce_metadata": "false",
    }
    if project:
        core["project"] = project
    properties: dict[str, dict[str, str]] = {
        "core": core,
        "auth": {"disable_credentials": "true"},
        "api_endpoint_overrides": {api: base for api in ENDPOINT_APIS},
        "proxy": {"type": "http", "address": "127.0.0.1", "port": str(parts.port)},
        "component_manager": {"disable_update_check": "true"},
        "survey": {"disable_prompts": "true"},
    }
    if region:
        properties["run"] = {"region": region}
    return properties


def write_gcloud_config(directory: Path, properties: dict[str, dict[str, str]]) -> Path:
    """Write ``properties`` into ``directory``'s ``default`` configuration and make it active.

    Properties already there that these do not name are kept. Returns the file written.
    """
    configurations = directory / "configurations"
    configurations.mkdir(parents=True, exist_ok=True)
    path = configurations / f"config_{CONFIG_NAME}"
    parser = configparser.ConfigParser(interpolation=None)
    if path.exists():
        parser.read(path, encoding="utf-8")
    for section, values in properties.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    with path.open("w", encoding="utf-8") as handle:
        parser.write(handle)
    (directory / "active_config").write_text(CONFIG_NAME, encoding="utf-8")
    return path
