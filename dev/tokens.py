"""Local stand-ins for Clerk session tokens: an RSA key pair kept under
``.dev/jwt/``, tokens minted in Clerk's v2 (default) or v1 shape, and the
verification API Gateway's JWT authorizer performs (RS256, ``kid``, ``iss``,
``aud``/``client_id``, ``exp``/``nbf``/``iat``)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_KEY_DIR = ROOT / ".dev" / "jwt"
# Used only when template.yaml names no issuer/audience (its Parameters win).
DEFAULT_ISSUER = "https://clerk.dev.local"  # the template's JwtIssuer default
DEFAULT_AUDIENCE = "practice-api"
# Clerk's `azp`: the origin of the front end that asked for the session token.
LOCAL_AZP = "http://localhost:5173"
ROLES = ("admin", "manager", "trainee")
ALGORITHM = "RS256"
# Clock skew tolerated on exp/nbf/iat, in seconds.
LEEWAY = 5

_PRIVATE = "private.pem"
_PUBLIC = "public.pem"


class InvalidToken(Exception):
    """The token fails a check the authorizer makes; ``str()`` says which."""


@dataclass(frozen=True)
class KeyPair:
    """The local signing key, its public half and the key id tokens carry."""

    private_key: rsa.RSAPrivateKey
    public_key: rsa.RSAPublicKey

    @property
    def kid(self) -> str:
        """A stable key id: base64url SHA-256 of the public key (DER), shortened."""
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashlib.sha256(der).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:22]


def generate_keys() -> KeyPair:
    """A fresh 2048-bit RSA key pair (tests use this for a "wrong key")."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(private, private.public_key())


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # Two commands may mint their first token at the same moment: write to a
    # private temporary name and rename, so nobody ever reads half a key.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def default_key_dir() -> Path:
    """Where the key pair lives: PRACTICE_DEV_JWT_DIR, else ``.dev/jwt``."""
    return Path(os.environ.get("PRACTICE_DEV_JWT_DIR") or DEFAULT_KEY_DIR)


def load_keys(key_dir: Path | None = None) -> KeyPair:
    """The key pair under ``key_dir`` (default_key_dir()), generated (PEM) on first use."""
    key_dir = key_dir or default_key_dir()
    private_path = key_dir / _PRIVATE
    if not private_path.exists():
        key_dir.mkdir(parents=True, exist_ok=True)
        pair = generate_keys()
        private_pem = pair.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = pair.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_atomically(key_dir / _PUBLIC, public_pem, 0o644)
        _write_atomically(private_path, private_pem, 0o600)
        return pair
    private = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(private, rsa.RSAPrivateKey):
        raise InvalidToken(f"{private_path} does not hold an RSA private key")
    return KeyPair(private, private.public_key())


def build_claims(
    *,
    org: str,
    user: str,
    role: str,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
    v1: bool = False,
    ttl: int = 3600,
    now: int | None = None,
    slug: str | None = None,
) -> dict[str, Any]:
    """Claims shaped like a Clerk session token (v2 unless ``v1``), with our ``aud``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    issued = int(time.time()) if now is None else now
    slug = slug or org.removeprefix("org_").lower()
    claims: dict[str, Any] = {
        "sub": user,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl,
        "azp": LOCAL_AZP,
        "sid": f"sess_local_{secrets.token_hex(8)}",
    }
    if v1:
        claims.update({"org_id": org, "org_role": f"org:{role}", "org_slug": slug})
    else:
        claims.update({"v": 2, "o": {"id": org, "rol": role, "slg": slug}})
    return claims


def sign(claims: dict[str, Any], keys: KeyPair) -> str:
    """The compact RS256 JWT for ``claims``, with the key id in its header."""
    return jwt.encode(claims, keys.private_key, algorithm=ALGORITHM, headers={"kid": keys.kid})


def issue_token(*, keys: KeyPair | None = None, **claims: Any) -> str:
    """Mint a signed local token; ``claims`` are build_claims' arguments (org, user, role, …)."""
    return sign(build_claims(**claims), keys or load_keys())


def _audiences(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, list | tuple):
        return {item for item in value if isinstance(item, str)}
    return set()


def verify(
    token: str,
    issuer: str,
    audience: str | list[str] | tuple[str, ...],
    *,
    keys: KeyPair | None = None,
    leeway: int = LEEWAY,
) -> dict[str, Any]:
    """The claims of ``token`` if API Gateway's JWT authorizer would accept it.

    Raises ``InvalidToken`` with a reason in API Gateway's words otherwise.
    """
    keys = keys or load_keys()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("the token is malformed") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidToken("the token's algorithm is not supported")
    if header.get("kid") != keys.kid:
        raise InvalidToken("the token's kid does not match any key of the issuer")
    try:
        claims = jwt.decode(
            token,
            keys.public_key,
            algorithms=[ALGORITHM],
            leeway=leeway,
            options={"require": ["exp"], "verify_aud": False, "verify_iss": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidToken("the token is not valid yet") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"the token is invalid: {exc}") from exc
    if claims.get("iss") != issuer:
        raise InvalidToken("the token does not have a valid issuer")
    # API Gateway checks `aud` (a string or a list); only without `aud` does
    # it fall back to `client_id`.
    wanted = _audiences(audience)
    if "aud" in claims:
        presented = _audiences(claims["aud"])
    else:
        presented = _audiences(claims.get("client_id"))
    if not presented & wanted:
        raise InvalidToken("the token does not have a valid audience")
    return claims
