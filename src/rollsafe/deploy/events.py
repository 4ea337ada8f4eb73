"""How a deploy tells its caller what it is doing (the CLI draws it; tests collect it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["DeployEvent", "DeployListener", "EventLog"]


@dataclass(frozen=True, slots=True)
class DeployEvent:
    """``kind``: ``start``, ``ok``, ``fail``, ``skip`` (of a stage) or ``info``."""

    kind: str
    stage: str
    detail: str = ""
    seconds: float | None = None


class DeployListener(Protocol):
    def __call__(self, event: DeployEvent) -> None: ...


@dataclass
class EventLog:
    """A listener that keeps every event (for tests and the demo's summary)."""

    events: list[DeployEvent] = field(default_factory=list)

    def __call__(self, event: DeployEvent) -> None:
        self.events.append(event)

    def stages(self, kind: str | None = None) -> list[str]:
        return [e.stage for e in self.events if kind is None or e.kind == kind]
