"""Client construction for Google's published samples, pointed at the emulator.

The samples build their clients with no arguments (or, for regional Secret Manager, with a
regional ``api_endpoint``); here that is the only difference: REST transport, anonymous
credentials and ``ClientOptions(api_endpoint=EMULATOR)``, as ``gapic_client`` of
``tests/emulator/conftest.py`` builds them. Everything after construction is
the sample's own calls. One emulator serves the session (``tests/conftest.py``); each module
has a project of its own, so modules do not see each other's resources.
"""

from __future__ import annotations

import itertools

import pytest

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    """A resource id not used before in this session (``prefix-N``)."""
    return f"{prefix}-{next(_ids)}"


@pytest.fixture(scope="module")
def sample_project() -> str:
    """The project the module's samples run in (``GOOGLE_CLOUD_PROJECT`` in the samples)."""
    return unique("samples-project")
