"""Versions on the wire: strong ETags, ``If-Match`` and ``If-None-Match``."""

from __future__ import annotations

from practice.errors import Malformed, VersionRequired


def etag(version: int) -> str:
    """The strong ETag of a version."""
    return f'"{version}"'


def version_from_if_match(raw: str | None, header: str = "If-Match") -> int | None:
    """The version inside an ``If-Match`` value (``"3"``, ``W/"3"`` or ``3``)."""
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    # Versions are positive int4s: ten digits at most.
    if not value.isdigit() or len(value) > 10:
        raise Malformed(f"the {header} value {raw[:40]!r} is not a version", field=header)
    return int(value)


def etag_matches(raw: str | None, version: int) -> bool:
    """Whether an ``If-None-Match`` value (``*``, one tag or a list) names ``version``."""
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
            field="expected_version",
        )
    return version
