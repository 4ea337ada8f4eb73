"""How rollsafe's probes authenticate: an ID token for private services, on Google and local.

Cloud Run creates services private: a request without an ID token for the service's URL
gets 403. Probes therefore carry a token from ``rollsafe.platforms.idtoken`` (ADC or
impersonation on Google, the emulator's endpoints on local). Whether a missing token is an
error depends on the service: for a public one the probe goes anonymously; for a private
one in a strict environment it is an error (fail closed); elsewhere it goes anonymously
and the answer decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from rollsafe.manifest import ResolvedEnvironment
from rollsafe.platforms import Platform
from rollsafe.platforms.idtoken import IdTokenAuth, IdTokens

__all__ = ["probe_client", "token_required", "tokens_for"]


def tokens_for(platform: Platform, impersonate: str | None = None) -> IdTokens:
    """Tokens from where ``platform``'s Google APIs are: an emulator's endpoint, or Google."""
    from rollsafe.platforms.cloudrun import CloudRunPlatform

    endpoint = platform.endpoint if isinstance(platform, CloudRunPlatform) else None
    return IdTokens(emulator=endpoint, impersonate=impersonate)


def token_required(env: ResolvedEnvironment, service: str) -> bool:
    """A private service in a strict environment is never probed without a token."""
    return env.strict and not env.services[service].public


@contextmanager
def probe_client(
    env: ResolvedEnvironment,
    service: str,
    tokens: IdTokens,
    audiences: Mapping[str, str] | None = None,
) -> Iterator[httpx.Client]:
    """An HTTP client for probing ``service``: each request carries an ID token for its URL
    (or, through ``audiences``, for the service URL a tag URL belongs to)."""
    auth = IdTokenAuth(tokens, required=token_required(env, service), audiences=audiences)
    with httpx.Client(auth=auth) as client:
        yield client
