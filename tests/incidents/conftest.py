"""The incident scenarios share the deploy tests' workspace: ``site`` (the emulator with the
example backend, its store, journal and ID tokens), plus ``google``: the project's Secret
Manager, Cloud Run and Cloud Logging through Google's own clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.conftest import Site, site
from tests.incidents._scenarios import Google, opened

__all__ = ["google", "site"]


@pytest.fixture
def google(site: Site) -> Iterator[Google]:
    """Google's clients on the site's project; the service is deleted afterwards, so a
    revision the guard refuses does not restart for the rest of the session."""
    with opened(site) as clients:
        yield clients
