"""``rollsafe check``: the manifest's rules against the environment's secret store."""

from rollsafe.check.engine import OtherEnvHashes, run_check, select_services
from rollsafe.check.environment import check_environment
from rollsafe.check.other_envs import OtherEnvironmentDigests
from rollsafe.check.render import FORMATS, render_github, render_json, render_sarif, render_text
from rollsafe.check.report import CheckReport, CheckStats
from rollsafe.check.resolve import ResolvedReference, resolve_references

__all__ = [
    "FORMATS",
    "CheckReport",
    "CheckStats",
    "OtherEnvHashes",
    "OtherEnvironmentDigests",
    "ResolvedReference",
    "check_environment",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
    "resolve_references",
    "run_check",
    "select_services",
]
