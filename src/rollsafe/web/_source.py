"""What the pages read: the ``StatusData`` interface, as a protocol, so the pages and the
API are typed against it and tests may hand them an in-memory stand-in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rollsafe.incidents.model import Episode
    from rollsafe.web.model import ServiceDetail, ServiceStatus, Staleness

__all__ = ["StatusSource"]


class StatusSource(Protocol):
    """The read model the status page renders (``rollsafe.web.data.StatusData``)."""

    @property
    def env_name(self) -> str: ...

    @property
    def interval(self) -> float: ...

    @property
    def generation(self) -> int: ...

    def refresh(self) -> None: ...

    def services(self) -> list[ServiceStatus]: ...

    def service(self, name: str) -> ServiceDetail | None: ...

    def incidents(self) -> list[Episode]: ...

    def indicator(self) -> tuple[str, str]: ...

    def staleness(self) -> Staleness: ...
