"""Request bodies that PostgreSQL will accept: strict JSON, checked once, then
validated against the route's model.

Python's json module accepts what PostgreSQL's json and text types refuse
(NaN and Infinity, NUL characters, lone surrogates) and recurses without
bound; each would otherwise surface as a database error after validation.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from practice.core.errors import Invalid, Malformed

MAX_DEPTH = 32


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _find_problem(value: Any, path: str, depth: int) -> tuple[str, str] | None:
    if depth > MAX_DEPTH:
        return path, f"is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        return None if _storable_text(value) else (path, "contains a NUL or unpaired surrogate")
    if isinstance(value, dict):
        for key, item in value.items():
            if not _storable_text(key):
                return path, "has a key with a NUL or unpaired surrogate"
            found = _find_problem(item, f"{path}.{key}", depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_problem(item, f"{path}.{index}", depth + 1)
            if found:
                return found
    return None


class DuplicateKey(ValueError):
    """An object names the same member twice (RFC 8259 leaves its meaning open)."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DuplicateKey(repeated)
    return document


def parse_json(raw: bytes) -> Any:
    """The body as JSON (None when empty); ``Malformed`` when it is not JSON or an
    object repeats a member, ``Invalid`` naming the place of a value the database
    could not store."""
    if not raw:
        return None
    try:
        document = json.loads(
            raw,
            parse_constant=_no_constants,
            parse_float=_finite,
            object_pairs_hook=_unique_members,
        )
    except RecursionError as exc:
        raise Malformed("the body is nested too deeply") from exc
    except UnicodeDecodeError as exc:
        raise Malformed(f"the body is not UTF-8 (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise Malformed(f"the body is not valid JSON: {exc.msg} at character {exc.pos}") from exc
    except DuplicateKey as exc:
        # Which of two values to take would be a guess: refused, naming the member.
        raise Malformed(f"the body names the member {str(exc)[:100]!r} more than once") from exc
    except ValueError as exc:
        # Out-of-range numbers and the like; the interpreter's own words (such
        # as its integer-digits limit) are no business of the client's.
        raise Malformed("the body holds a number JSON cannot carry here") from exc
    problem = _find_problem(document, "body", 0)
    if problem:
        field, message = problem
        raise Invalid(f"{field} {message}", errors=[{"field": field, "message": message}])
    return document


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """A validation error's location as a dotted path (``body.answers.q1``)."""
    return ".".join(str(part) for part in loc)


def invalid_from(errors: list[dict[str, Any]], prefix: tuple[str, ...] = ()) -> Invalid:
    """One ``Invalid`` naming every field pydantic (or FastAPI) refused."""
    named = [
        {"field": field_name((*prefix, *err.get("loc", ()))), "message": err.get("msg", "invalid")}
        for err in errors
    ]
    names = ", ".join(e["field"] for e in named) or "the request"
    return Invalid(f"invalid {names}", errors=named)


# Building a validator costs far more than using one: one per model per container.
adapter_for = lru_cache(maxsize=64)(TypeAdapter)


def validate_body[M](document: Any, model: type[M] | Any) -> M:
    """A parsed body validated against ``model`` (a class or a union of classes);
    ``Invalid`` naming each refused field as ``body.<path>``."""
    try:
        return adapter_for(model).validate_python(document)
    except ValidationError as exc:
        raise invalid_from(exc.errors(), ("body",)) from exc
