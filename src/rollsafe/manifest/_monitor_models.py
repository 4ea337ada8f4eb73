"""The manifest's ``monitor:`` (per service) and ``alerts:`` (per environment) sections."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["FromSecret", "LogAlert", "LogAlertThreshold", "Monitor", "Receiver", "Retention"]


def _duration(raw: object) -> float:
    from rollsafe.manifest.models import parse_duration

    return parse_duration(raw)


def _duration_or_off(raw: object) -> float | None:
    # `off`, `false` or 0 turn it off; YAML reads a bare `off` as False
    if raw is None or raw is False or raw == "off":
        return 0.0
    return _duration(raw)


_DAYS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*d\s*$")


def _long_duration(raw: object) -> float:
    # retention is counted in days: `2d` as well as the other durations (`36h`, seconds)
    if isinstance(raw, str) and (match := _DAYS.match(raw)):
        return float(match.group(1)) * 86400.0
    try:
        return _duration(raw)
    except ValueError:
        raise ValueError(
            "a retention is a number of seconds or a string like '2d', '36h' or '90m'"
        ) from None


_Seconds = Annotated[float, BeforeValidator(_duration)]
_LongSeconds = Annotated[float, BeforeValidator(_long_duration)]
_SecondsOrOff = Annotated[float, BeforeValidator(_duration_or_off)]
_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FromSecret(_Model):
    """A value kept in the environment's secret store: ``{secret: NAME}`` (``{env}`` is
    expanded; the latest version is read). Receiver URLs and keys are secrets."""

    secret: str = Field(min_length=1)


class LogAlertThreshold(_Model):
    """Fire when at least ``count`` matching lines arrived within ``window``."""

    count: int = Field(default=1, ge=1, le=1_000_000)
    window: _Seconds = Field(default=300.0, description="Seconds (or '5m') counted back.")


class LogAlert(_Model):
    """An alert on the service's container and system log lines."""

    name: str = Field(pattern=_NAME, description="The alert's name (its `alertname`).")
    match: str | None = Field(
        default=None, description="A regular expression searched in each line's text."
    )
    filter: str | None = Field(
        default=None,
        description="A Cloud Logging filter instead of `match`, e.g. severity>=ERROR.",
    )
    severity: Literal["critical", "warning", "info"] = "warning"
    threshold: LogAlertThreshold = Field(default_factory=LogAlertThreshold)

    @model_validator(mode="after")
    def _one_matcher(self) -> LogAlert:
        if (self.match is None) == (self.filter is None):
            raise ValueError("a log alert has exactly one of `match` (a regex) or `filter`")
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as exc:
                raise ValueError(f"`match` is not a regular expression: {exc}") from None
        return self


class Retention(_Model):
    """How long the monitor keeps what it records (``monitor.retention``): one-minute probe
    buckets (``raw``), hourly rollups (``hourly``), daily rollups and the alert history
    (``daily``)."""

    raw: _LongSeconds = Field(
        default=2 * 86400.0,
        description="One-minute probe buckets, e.g. '2d'; at least 1d (the 24 h chart reads them).",
    )
    hourly: _LongSeconds = Field(
        default=30 * 86400.0, description="Hourly rollups (the 7d and 30d charts), e.g. '30d'."
    )
    daily: _LongSeconds = Field(
        default=90 * 86400.0,
        description="Daily rollups and the alert history (the 90-day bar), e.g. '90d'.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Retention:
        if self.raw < 86400.0:
            raise ValueError(
                "`raw` keeps at least 1d of one-minute buckets: the status page's 24 h chart "
                "reads them (e.g. raw: 2d)"
            )
        if not self.raw <= self.hourly <= self.daily:
            raise ValueError(
                "retention must grow from `raw` to `hourly` to `daily` "
                "(raw <= hourly <= daily), e.g. {raw: 2d, hourly: 30d, daily: 90d}"
            )
        return self


class Monitor(_Model):
    """How ``rollsafe monitor`` watches a service after its deploys."""

    interval: _Seconds = Field(default=30.0, ge=1.0, description="Between probes; >= 1 s.")
    failure_threshold: int = Field(
        default=3, ge=1, le=1000, description="Failing checks in a row that fire an alert."
    )
    success_threshold: int = Field(
        default=2, ge=1, le=1000, description="Passing checks in a row that resolve it."
    )
    repeat: _Seconds = Field(
        default=4 * 3600.0, ge=60.0, description="Reminder interval while an alert fires."
    )
    rollback_within: _SecondsOrOff | None = Field(
        default=None,
        description="Roll back a deploy whose service goes down or answers 5xx within this "
        "long of it (default 15m in strict environments, off elsewhere; `off` or 0 turns it "
        "off).",
    )
    max_error_rate: float = Field(
        default=0.05, ge=0, le=1, description="Largest share of 5xx answers over `window`."
    )
    min_requests: int = Field(
        default=10, ge=1, description="Fewer requests in `window`: the 5xx rate is not judged."
    )
    window: _Seconds = Field(
        default=60.0, ge=1.0, description="How far back request logs are judged."
    )
    default_log_alerts: bool = Field(
        default=True,
        description="The built-in log alerts: the start-up guard's CRITICAL line, "
        "`Container called exit(`, a failed startup probe, JWT or secret configuration errors.",
    )
    log_alerts: list[LogAlert] = Field(default_factory=list)
    retention: Retention = Field(
        default_factory=Retention,
        description="How long probe buckets, rollups and alert history are kept.",
    )


class Receiver(_Model):
    """Where an environment's alerts go (``alerts:``)."""

    type: Literal["webhook", "alertmanager", "pagerduty", "slack", "apprise"]
    name: str | None = Field(
        default=None, pattern=_NAME, description="Shown in reports (default: the type)."
    )
    url: str | FromSecret | None = Field(
        default=None, description="The endpoint, or {secret: NAME}; never printed."
    )
    routing_key: str | FromSecret | None = Field(
        default=None, description="PagerDuty's integration key, or {secret: NAME}."
    )
    timeout: _Seconds = Field(default=10.0, gt=0, description="Per attempt.")

    @model_validator(mode="after")
    def _fields_of_type(self) -> Receiver:
        if self.type == "pagerduty":
            if self.routing_key is None:
                raise ValueError("a pagerduty receiver needs `routing_key`")
        elif self.url is None:
            raise ValueError(f"a {self.type} receiver needs `url`")
        if self.type != "pagerduty" and self.routing_key is not None:
            raise ValueError(f"`routing_key` is for pagerduty receivers, not {self.type}")
        return self
