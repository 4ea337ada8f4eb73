"""Sinks and log-based metrics of the Logging API, stored as their REST JSON.

Every project has the two sinks Google creates: ``_Required`` (audit logs, to the
``_Required`` bucket; it can be neither updated nor deleted) and ``_Default`` (everything
else, to the ``_Default`` bucket; it can be updated and disabled, not deleted), with Google's
filters and destinations and refusals (PERMISSION_DENIED). Sinks export nothing here: the
emulator keeps their configuration so that tools managing them work unchanged.

A sink update without ``updateMask`` changes ``destination``, ``filter`` and
``includeChildren`` (Google's documented backwards-compatible default). ``metrics.update``
creates a missing metric, as Google's does. Filters are checked with the emulator's query
language, so a filter it could not evaluate is refused with INVALID_ARGUMENT.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import TypeVar

import proto  # type: ignore[import-untyped]
from google.cloud.logging_v2 import types as logging_types

from rollsafe.emulator._google import (
    GoogleError,
    already_exists,
    invalid_argument,
    not_found,
    to_dict,
)
from rollsafe.emulator._logging_filter import compile_entry_filter
from rollsafe.emulator._logging_names import page_names
from rollsafe.emulator.db import EmulatorDB

__all__ = ["DEFAULT_SINKS", "LoggingConfig", "project_number"]

M = TypeVar("M", bound=proto.Message)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logging_config (
    project TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (project, kind, name)
);
"""
_AUDIT_LOGS = tuple(
    f"{source}.googleapis.com/{kind}"
    for kind in ("activity", "system_event", "access_transparency")
    for source in ("cloudaudit", "externalaudit")
)
#: name -> filter of the sinks Google creates in every project
DEFAULT_SINKS = {
    "_Default": " AND ".join(f'NOT LOG_ID("{log}")' for log in _AUDIT_LOGS),
    "_Required": " OR ".join(f'LOG_ID("{log}")' for log in _AUDIT_LOGS),
}
_SINK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
# Google: A-Z a-z 0-9 _-.,+!*',()%/ ; a forward slash is not the first character
_METRIC_ID = re.compile(r"^[A-Za-z0-9_\-.,+!*'()%][A-Za-z0-9_\-.,+!*'()%/]{0,99}$")
_SINK_MASK_DEFAULT = ("destination", "filter", "include_children")
_SINK_MUTABLE = frozenset(
    (
        "destination",
        "filter",
        "description",
        "disabled",
        "exclusions",
        "include_children",
        "bigquery_options",
        "output_version_format",
    )
)

LogSink = logging_types.LogSink
LogMetric = logging_types.LogMetric


def project_number(project: str) -> int:
    """A stable 12-digit number standing for the project's number (the emulator has no
    resource manager; Google names sink writer identities after the number)."""
    digest = hashlib.sha256(project.encode()).digest()
    return 100_000_000_000 + int.from_bytes(digest[:8], "big") % 900_000_000_000


def _writer_identity(project: str) -> str:
    number = project_number(project)
    return f"serviceAccount:service-{number}@gcp-sa-logging.iam.gserviceaccount.com"


def _now() -> datetime:
    return datetime.now(UTC)


class LoggingConfig:
    """Sinks and metrics of every project, in the emulator's database."""

    def __init__(self, db: EmulatorDB) -> None:
        self.db = db
        db.ensure_schema(_SCHEMA)

    # -- storage --

    def _load(self, cls: type[M], project: str, kind: str, name: str) -> M | None:
        row = self.db.query_one(
            "SELECT body FROM logging_config WHERE project = ? AND kind = ? AND name = ?",
            (project, kind, name),
        )
        if row is None:
            return None
        message: M = cls.from_json(row["body"], ignore_unknown_fields=True)
        return message

    def _save(self, project: str, kind: str, name: str, message: proto.Message) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO logging_config (project, kind, name, body) VALUES (?, ?, ?, ?)",
            (project, kind, name, json.dumps(to_dict(message, defaults=False))),
        )

    def _names(self, project: str, kind: str) -> list[str]:
        rows = self.db.query(
            "SELECT name FROM logging_config WHERE project = ? AND kind = ? ORDER BY name",
            (project, kind),
        )
        return [row["name"] for row in rows]

    def _delete(self, project: str, kind: str, name: str) -> None:
        self.db.execute(
            "DELETE FROM logging_config WHERE project = ? AND kind = ? AND name = ?",
            (project, kind, name),
        )

    def _ensure_default_sinks(self, project: str) -> None:
        for name, filter_ in DEFAULT_SINKS.items():
            if self._load(LogSink, project, "sink", name) is None:
                now = _now()
                self._save(
                    project,
                    "sink",
                    name,
                    LogSink(
                        name=name,
                        destination=(
                            f"logging.googleapis.com/projects/{project}/locations/global"
                            f"/buckets/{name}"
                        ),
                        filter=filter_,
                        writer_identity=_writer_identity(project),
                        create_time=now,
                        update_time=now,
                    ),
                )

    # -- sinks --

    def list_sinks(
        self, project: str, page_size: int, page_token: str
    ) -> logging_types.ListSinksResponse:
        self._ensure_default_sinks(project)
        names, token = page_names(self._names(project, "sink"), page_size, page_token)
        sinks = [self._load(LogSink, project, "sink", name) for name in names]
        return logging_types.ListSinksResponse(
            sinks=[sink for sink in sinks if sink is not None], next_page_token=token
        )

    def get_sink(self, project: str, name: str) -> logging_types.LogSink:
        self._ensure_default_sinks(project)
        sink = self._load(LogSink, project, "sink", name)
        if sink is None:
            raise not_found(f"Sink {name} does not exist")
        return sink

    def create_sink(self, project: str, sink: logging_types.LogSink) -> logging_types.LogSink:
        self._ensure_default_sinks(project)
        if not sink.name:
            raise invalid_argument("Sink name is required.")
        if not _SINK_ID.match(sink.name):
            raise invalid_argument(
                f"Invalid sink name {sink.name!r}: up to 100 letters, digits, underscores,"
                " hyphens and periods, starting with a letter or digit."
            )
        if self._load(LogSink, project, "sink", sink.name) is not None:
            raise already_exists(f"Sink {sink.name} already exists")
        _check_sink(sink)
        now = _now()
        created = LogSink(sink)
        created.writer_identity = _writer_identity(project)
        created.create_time = now
        created.update_time = now
        self._save(project, "sink", sink.name, created)
        return created

    def update_sink(
        self, project: str, name: str, sink: logging_types.LogSink, update_mask: str
    ) -> logging_types.LogSink:
        current = self.get_sink(project, name)
        if name == "_Required":
            raise GoogleError(403, "PERMISSION_DENIED", "Sink _Required cannot be updated")
        fields = _mask(update_mask) or _SINK_MASK_DEFAULT
        for field in fields:
            if field not in _SINK_MUTABLE:
                raise invalid_argument(f"Field {field} in updateMask cannot be updated.")
        updated = LogSink(current)
        for field in fields:
            setattr(updated, field, getattr(sink, field))
        _check_sink(updated)
        updated.update_time = _now()
        self._save(project, "sink", name, updated)
        return updated

    def delete_sink(self, project: str, name: str) -> None:
        self.get_sink(project, name)
        if name == "_Default":
            message = "Sink _Default cannot be deleted. Consider disabling instead"
            raise GoogleError(403, "PERMISSION_DENIED", message)
        if name == "_Required":
            raise GoogleError(403, "PERMISSION_DENIED", "Sink _Required cannot be deleted")
        self._delete(project, "sink", name)

    # -- metrics --

    def list_metrics(
        self, project: str, page_size: int, page_token: str
    ) -> logging_types.ListLogMetricsResponse:
        names, token = page_names(self._names(project, "metric"), page_size, page_token)
        metrics = [self._load(LogMetric, project, "metric", name) for name in names]
        return logging_types.ListLogMetricsResponse(
            metrics=[metric for metric in metrics if metric is not None], next_page_token=token
        )

    def get_metric(self, project: str, name: str) -> logging_types.LogMetric:
        metric = self._load(LogMetric, project, "metric", name)
        if metric is None:
            raise not_found(f"Metric {name} does not exist")
        return metric

    def create_metric(
        self, project: str, metric: logging_types.LogMetric
    ) -> logging_types.LogMetric:
        if self._load(LogMetric, project, "metric", metric.name) is not None:
            raise already_exists(f"Metric {metric.name} already exists")
        return self._put_metric(project, metric, None)

    def update_metric(
        self, project: str, name: str, metric: logging_types.LogMetric
    ) -> logging_types.LogMetric:
        if metric.name and metric.name != name:
            raise invalid_argument(
                f"The metric name in the request body ({metric.name}) does not match the"
                f" name in the URL ({name})."
            )
        metric.name = name
        return self._put_metric(project, metric, self._load(LogMetric, project, "metric", name))

    def delete_metric(self, project: str, name: str) -> None:
        self.get_metric(project, name)
        self._delete(project, "metric", name)

    def _put_metric(
        self,
        project: str,
        metric: logging_types.LogMetric,
        current: logging_types.LogMetric | None,
    ) -> logging_types.LogMetric:
        if not metric.name:
            raise invalid_argument("Metric name is required.")
        if not _METRIC_ID.match(metric.name):
            raise invalid_argument(f"Invalid metric name {metric.name!r}.")
        if not metric.filter.strip():
            raise invalid_argument("Metric filter is required.")
        _check_filter(metric.filter)
        now = _now()
        stored = LogMetric(metric)
        stored.create_time = current.create_time if current is not None else now
        stored.update_time = now
        _describe(project, stored)
        self._save(project, "metric", metric.name, stored)
        return stored


def _describe(project: str, metric: logging_types.LogMetric) -> None:
    """Fill the metric descriptor as Google does: a counter unless values are extracted."""
    descriptor = metric.metric_descriptor
    kind = f"logging.googleapis.com/user/{metric.name}"
    descriptor.name = f"projects/{project}/metricDescriptors/{kind}"
    descriptor.type = kind
    if not descriptor.metric_kind:
        descriptor.metric_kind = descriptor.MetricKind.DELTA
    if not descriptor.value_type:
        descriptor.value_type = (
            descriptor.ValueType.DISTRIBUTION
            if metric.value_extractor
            else descriptor.ValueType.INT64
        )
    if not descriptor.unit:
        descriptor.unit = "1"


def _check_sink(sink: logging_types.LogSink) -> None:
    if not sink.destination:
        raise invalid_argument("Sink destination is required.")
    _check_filter(sink.filter)
    for exclusion in sink.exclusions:
        _check_filter(exclusion.filter)


def _check_filter(text: str) -> None:
    compile_entry_filter(text)


def _mask(text: str) -> tuple[str, ...]:
    """``updateMask`` (camelCase or snake_case paths, comma separated) as field names."""
    names = (part.strip() for part in text.split(",") if part.strip())
    return tuple(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name) for name in names)
