"""Versions on the wire: strong ETags, ``If-Match`` and ``If-None-Match`` (RFC 9110)."""

from __future__ import annotations

from practice.core.errors import Invalid, VersionRequired

# Versions are positive PostgreSQL integers.
MAX_VERSION = 2_147_483_647


def _up_to(limit: int) -> str:
    """A regular expression of the decimal numbers 1 to ``limit``, no leading zero."""
    digits = str(limit)

    def rest(count: int) -> str:
        return "" if count == 0 else "[0-9]" if count == 1 else f"[0-9]{{{count}}}"

    alternatives = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"]
    for i, digit in enumerate(digits):
        low, high = (1 if i == 0 else 0), int(digit) - 1
        if high >= low:
            span = str(low) if low == high else f"[{low}-{high}]"
            alternatives.append(f"{digits[:i]}{span}{rest(len(digits) - i - 1)}")
    return "|".join([*alternatives, digits])


_VERSION = _up_to(MAX_VERSION)
# One strong entity tag naming a version ("3"; a bare 3 is read the same). A weak
# tag (W/"3") never matches under If-Match's strong comparison, and * or a list
# names no version to build on: none of them fits.
IF_MATCH_PATTERN = f'^(?:"(?:{_VERSION})"|(?:{_VERSION}))$'
_FIELD = "header.If-Match"


def etag(version: int) -> str:
    """The strong ETag of a version."""
    return f'"{version}"'


def version_from_if_match(raw: str | None) -> int | None:
    """The version an ``If-Match`` value names (``IF_MATCH_PATTERN``)."""
    if raw is None:
        return None
    digits = raw.strip().strip('"')
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 10):
        raise Invalid(
            'If-Match must name one version as a strong entity tag, such as "3"', field=_FIELD
        )
    version = int(digits)
    if not 1 <= version <= MAX_VERSION:
        raise Invalid(f"If-Match must name a version from 1 to {MAX_VERSION}", field=_FIELD)
    return version


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
