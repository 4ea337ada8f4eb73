"""The status page: every service's health, deploys and incidents, and its JSON API,
served by ``rollsafe monitor --serve`` or ``rollsafe web``. Rendered on the server from
``StatusData`` (the read model over the state store)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rollsafe.web.model import (
    ChartPoint,
    DayBucket,
    Marker,
    ServiceDetail,
    ServiceState,
    ServiceStatus,
    Staleness,
)

__all__ = [
    "ChartPoint",
    "DayBucket",
    "Marker",
    "ServiceDetail",
    "ServiceState",
    "ServiceStatus",
    "Staleness",
    "StatusData",
]

if TYPE_CHECKING:
    from rollsafe.web.data import StatusData


def __getattr__(name: str) -> Any:
    # lazy: the data module pulls in the monitor and incidents packages
    if name == "StatusData":
        from rollsafe.web.data import StatusData

        return StatusData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
