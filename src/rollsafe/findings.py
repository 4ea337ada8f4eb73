"""Findings: the one shape every check, drift and monitor result takes."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Finding", "Severity"]


class Severity(enum.StrEnum):
    """How bad a finding is. ``error`` blocks in every environment."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong (or worth knowing) about one key of one service.

    ``source`` says where the judged value came from: ``sm://NAME/versions/N``, ``env``,
    ``manifest:LINE`` or ``run://SERVICE/REVISION``. ``line`` is the manifest line of the key,
    kept for SARIF and GitHub annotations. Never holds a secret value.
    """

    service: str
    key: str
    rule: str
    severity: Severity
    message: str
    hint: str = ""
    source: str = ""
    line: int | None = field(default=None, compare=False)

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the contract (plus ``line``)."""
        data = asdict(self)
        data["severity"] = self.severity.value
        return data
