"""Local tokens: Clerk v1/v2 shapes, the key pair on disk, and the checks API
Gateway's JWT authorizer makes (signature, kid, iss, aud, exp, nbf)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from dev import tokens

ISSUER = "https://clerk.test.local"
AUDIENCE = "practice-api"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tokens.KeyPair:
    return tokens.load_keys(tmp_path_factory.mktemp("jwt"))


@pytest.fixture(scope="module")
def other_keys() -> tokens.KeyPair:
    return tokens.generate_keys()


def _token(keys: tokens.KeyPair, **overrides: object) -> str:
    claims = tokens.build_claims(
        org="org_acme", user="user_1", role="manager", issuer=ISSUER, audience=AUDIENCE
    )
    claims.update(overrides)
    return tokens.sign(claims, keys)


def test_round_trip_v2_shape(keys: tokens.KeyPair) -> None:
    token = tokens.issue_token(
        org="org_acme", user="user_1", role="admin", issuer=ISSUER, audience=AUDIENCE, keys=keys
    )
    claims = tokens.verify(token, ISSUER, AUDIENCE, keys=keys)
    assert claims["sub"] == "user_1"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["v"] == 2
    assert claims["o"] == {"id": "org_acme", "rol": "admin", "slg": "acme"}
    assert claims["azp"] == "http://localhost:5173"
    assert claims["sid"].startswith("sess_")
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    assert "org_id" not in claims
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": keys.kid, "typ": "JWT"}


def test_round_trip_v1_shape(keys: tokens.KeyPair) -> None:
    token = tokens.issue_token(
        org="org_acme",
        user="user_2",
        role="trainee",
        issuer=ISSUER,
        audience=AUDIENCE,
        v1=True,
        ttl=60,
        keys=keys,
    )
    claims = tokens.verify(token, ISSUER, AUDIENCE, keys=keys)
    assert claims["org_id"] == "org_acme"
    assert claims["org_role"] == "org:trainee"
    assert claims["org_slug"] == "acme"
    assert "o" not in claims
    assert "v" not in claims
    assert claims["exp"] - claims["iat"] == 60


def test_role_is_checked() -> None:
    with pytest.raises(ValueError, match="role"):
        tokens.build_claims(org="org_a", user="user_1", role="owner")


def test_keys_persist_as_pem(tmp_path: Path) -> None:
    first = tokens.load_keys(tmp_path)
    assert (tmp_path / "private.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert (tmp_path / "public.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert (tmp_path / "private.pem").stat().st_mode & 0o077 == 0
    assert tokens.load_keys(tmp_path).kid == first.kid


def test_audience_list_and_client_id_fallback(keys: tokens.KeyPair) -> None:
    listed = _token(keys, aud=["other", AUDIENCE])
    assert tokens.verify(listed, ISSUER, [AUDIENCE], keys=keys)["sub"] == "user_1"
    claims = tokens.build_claims(org="org_a", user="user_1", role="admin", issuer=ISSUER)
    del claims["aud"]
    claims["client_id"] = AUDIENCE
    assert tokens.verify(tokens.sign(claims, keys), ISSUER, AUDIENCE, keys=keys)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"aud": None}, "audience"),
        ({"iss": "https://evil.example.com"}, "issuer"),
    ],
    ids=["expired", "not-before", "wrong-audience", "null-audience", "wrong-issuer"],
)
def test_rejected_claims(keys: tokens.KeyPair, overrides: dict, reason: str) -> None:
    with pytest.raises(tokens.InvalidToken, match=reason):
        tokens.verify(_token(keys, **overrides), ISSUER, AUDIENCE, keys=keys)


def test_missing_exp_is_rejected(keys: tokens.KeyPair) -> None:
    claims = tokens.build_claims(
        org="org_a", user="user_1", role="admin", issuer=ISSUER, audience=AUDIENCE
    )
    del claims["exp"]
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(tokens.sign(claims, keys), ISSUER, AUDIENCE, keys=keys)


def test_small_clock_skew_is_tolerated(keys: tokens.KeyPair) -> None:
    token = _token(keys, nbf=int(time.time()) + 2)
    assert tokens.verify(token, ISSUER, AUDIENCE, keys=keys)["sub"] == "user_1"


def test_wrong_key_rejected(keys: tokens.KeyPair, other_keys: tokens.KeyPair) -> None:
    # Signed by another key but claiming ours: the signature check catches it.
    claims = tokens.build_claims(
        org="org_a", user="user_1", role="admin", issuer=ISSUER, audience=AUDIENCE
    )
    forged = jwt.encode(
        claims, other_keys.private_key, algorithm="RS256", headers={"kid": keys.kid}
    )
    with pytest.raises(tokens.InvalidToken, match="invalid"):
        tokens.verify(forged, ISSUER, AUDIENCE, keys=keys)
    # Signed by another key under its own kid: no such key at the issuer.
    with pytest.raises(tokens.InvalidToken, match="kid"):
        tokens.verify(tokens.sign(claims, other_keys), ISSUER, AUDIENCE, keys=keys)


def test_other_algorithms_and_garbage_rejected(keys: tokens.KeyPair) -> None:
    claims = tokens.build_claims(
        org="org_a", user="user_1", role="admin", issuer=ISSUER, audience=AUDIENCE
    )
    hs256 = jwt.encode(claims, "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256")
    with pytest.raises(tokens.InvalidToken, match="algorithm"):
        tokens.verify(hs256, ISSUER, AUDIENCE, keys=keys)
    with pytest.raises(tokens.InvalidToken, match="malformed"):
        tokens.verify("not-a-jwt", ISSUER, AUDIENCE, keys=keys)
