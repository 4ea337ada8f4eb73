"""Google-shaped tokens the emulator signs: ID tokens for services, access tokens for APIs.

One RSA key, kept in the state directory (mode 0600) so tokens survive a restart, signs
RS256 JWTs with the claims of a Google ID token (``iss`` https://accounts.google.com, ``aud``,
``azp``, ``sub``, ``email``, ``email_verified``, ``iat``, ``exp`` = ``iat`` + 3600). Its public
half is served as a JWKS (``/oauth2/v3/certs``), so a verifier that trusts the emulator can
check tokens as it would Google's. Access tokens (``ya29.`` + a signed JWT) stand in for
Google's opaque OAuth tokens; only the emulator reads them.

Tokens are credentials: nothing here logs or stores one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path
from typing import Any

from rollsafe.emulator.state import EmulatorState

__all__ = [
    "DEFAULT_PROJECT",
    "DEFAULT_SERVICE_ACCOUNT",
    "ISSUER",
    "KEY_FILE",
    "LIFETIME",
    "TokenIssuer",
    "TokenVerifier",
    "issuer",
]

KEY_FILE = "token-signing-key.pem"
ISSUER = "https://accounts.google.com"
#: seconds a token is valid, as Google's ID and access tokens
LIFETIME = 3600
#: the project and identity the emulator's metadata server answers for
DEFAULT_PROJECT = "rollsafe-emulator"
DEFAULT_SERVICE_ACCOUNT = f"{DEFAULT_PROJECT}@{DEFAULT_PROJECT}.iam.gserviceaccount.com"
_ACCESS_PREFIX = "ya29."
_EXTENSION = "tokens"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unique_id(email: str) -> str:
    """A stable 21-digit number per account, as Google's ``sub`` of a service account."""
    digest = int.from_bytes(hashlib.sha256(email.encode()).digest()[:9], "big")
    return str(100000000000000000000 + digest % 900000000000000000000)


def _load_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another opener won the race: use its key
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


class TokenIssuer:
    """Signs and checks the emulator's tokens with the key in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        import jwt

        self._jwt = jwt
        self._key = _load_key(Path(state_dir) / KEY_FILE)
        self._public = self._key.public_key()
        numbers = self._public.public_numbers()
        self.kid = hashlib.sha256(_b64url_uint(numbers.n).encode()).hexdigest()[:40]
        self._jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def __repr__(self) -> str:
        return f"TokenIssuer(kid={self.kid!r})"

    def _sign(self, claims: dict[str, Any]) -> str:
        token: str = self._jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )
        return token

    def id_token(
        self,
        audience: str,
        email: str = DEFAULT_SERVICE_ACCOUNT,
        *,
        include_email: bool = True,
        now: float | None = None,
    ) -> str:
        """An ID token for ``audience`` (a service or tag URL) naming ``email``."""
        issued = int(time.time() if now is None else now)
        subject = _unique_id(email)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "azp": subject,
            "sub": subject,
            "iat": issued,
            "exp": issued + LIFETIME,
        }
        if include_email:
            claims["email"] = email
            claims["email_verified"] = True
        return self._sign(claims)

    def access_token(self, email: str = DEFAULT_SERVICE_ACCOUNT) -> tuple[str, int]:
        """An OAuth access token for ``email`` and its lifetime in seconds."""
        issued = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": _unique_id(email),
            "email": email,
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "iat": issued,
            "exp": issued + LIFETIME,
        }
        return _ACCESS_PREFIX + self._sign(claims), LIFETIME

    def access_email(self, token: str) -> str | None:
        """The account of a valid, unexpired access token of ours, else None."""
        if not token.startswith(_ACCESS_PREFIX):
            return None
        claims = self._decode(token[len(_ACCESS_PREFIX) :])
        if claims is None or "scope" not in claims:
            return None
        email = claims.get("email")
        return email if isinstance(email, str) else None

    def id_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid, unexpired ID token of ours (any audience), else None."""
        claims = self._decode(token)
        if claims is None or "scope" in claims or not isinstance(claims.get("aud"), str):
            return None
        return claims

    def _decode(self, token: str) -> dict[str, Any] | None:
        jwt = self._jwt
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                issuer=ISSUER,
                options={"verify_aud": False, "require": ["exp", "iat", "iss", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        return claims

    def jwks(self) -> dict[str, Any]:
        """The public keys, as Google serves them at ``/oauth2/v3/certs``."""
        return {"keys": [dict(self._jwk)]}


class TokenVerifier:
    """Checks ID tokens for the router, remembering each verdict until the token expires.

    RSA verification costs far more than a proxied request; a client sends the same token
    on every request for an hour, so the verdict ``token -> (aud, email, exp)`` is cached.
    """

    def __init__(self, issuer: TokenIssuer, *, max_entries: int = 4096) -> None:
        self._issuer = issuer
        self._max = max_entries
        self._cache: dict[bytes, tuple[str, str, float]] = {}

    def __repr__(self) -> str:
        return f"TokenVerifier(cached={len(self._cache)})"

    def caller(self, token: bytes) -> tuple[str, str] | None:
        """``(aud, email)`` of a valid, unexpired ID token of ours (``email`` is empty when
        the token names none), else None."""
        cached = self._cache.get(token)
        now = time.time()
        if cached is None:
            try:
                claims = self._issuer.id_claims(token.decode("ascii"))
            except UnicodeDecodeError:
                claims = None
            if len(self._cache) >= self._max:
                self._cache.clear()  # crude, but bounded; valid tokens verify again once
            if claims:
                cached = (claims["aud"], str(claims.get("email", "")), float(claims["exp"]))
            else:
                cached = ("", "", 0.0)
            self._cache[token] = cached
        audience, email, expires = cached
        if now >= expires:
            return None
        return audience, email


def issuer(state: EmulatorState) -> TokenIssuer:
    """The emulator's token issuer, created (with its key) on first use."""
    return state.extension(_EXTENSION, TokenIssuer, lambda: TokenIssuer(state.state_dir))
