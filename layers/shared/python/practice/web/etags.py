"""Versions on the wire: strong ETags, ``If-Match`` and ``If-None-Match`` (RFC 9110)."""

from __future__ import annotations

from practice.errors import Invalid, PreconditionFailed, VersionRequired

# Versions are positive PostgreSQL integers.
MAX_VERSION = 2_147_483_647
HEADER = "header.If-Match"


def etag(version: int) -> str:
    """The strong ETag of a version."""
    return f'"{version}"'


def version_from_if_match(raw: str | None) -> int | None:
    """The version an ``If-Match`` value names: one strong entity tag (``"3"``; a
    bare ``3`` is read the same). A weak tag (``W/"3"``) never matches, since
    If-Match compares strongly; ``*``, lists and anything but a version are refused."""
    if raw is None:
        return None
    value = raw.strip()
    if value.startswith("W/"):
        raise PreconditionFailed(
            "If-Match compares entity tags strongly, and a weak tag never matches; send the"
            ' strong ETag ("3")',
            field=HEADER,
        )
    digits = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    # Ten digits at most before converting: a long run of digits is refused, not parsed.
    shaped = digits.isascii() and digits.isdigit() and len(digits) <= 10
    if not shaped or not 1 <= int(digits) <= MAX_VERSION:
        raise Invalid(
            f'If-Match must name one version as an entity tag, such as "3" (1 to {MAX_VERSION})',
            field=HEADER,
        )
    return int(digits)


def etag_matches(raw: str | None, version: int) -> bool:
    """Whether an ``If-None-Match`` value (``*``, one tag or a list) names ``version``
    (weak comparison, as RFC 9110 asks of If-None-Match)."""
    if raw is None:
        return False
    if raw.strip() == "*":
        return True
    tags = (tag.strip().removeprefix("W/").strip('"') for tag in raw.split(","))
    return str(version) in tags


def expected_version(in_body: int | None, if_match: str | None) -> int:
    """The version a conditional write expects: the body's, else ``If-Match``'s."""
    version = in_body if in_body is not None else version_from_if_match(if_match)
    if version is None:
        raise VersionRequired(
            "send expected_version in the body or the version in If-Match",
            field="body.expected_version",
        )
    return version
