"""Route parameters (path, query and headers) declared as one pydantic model per
route, read with one validation per request and documented in the contract.

One validation reads them all (``practice.web.routes`` calls ``read_params``
before the endpoint runs), and the contract documents the same fields. A refusal
names the field by where it travels (``query.type``, ``path.attemptId``; a
header by its canonical name, ``header.If-Match``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError
from starlette.requests import Request

from practice.core.model import Model
from practice.web.body import invalid_from


@dataclass(frozen=True)
class In:
    """Where a parameter travels and its name on the wire, as ``Annotated``
    metadata of a ``RouteParams`` field: ``Annotated[str, In("query", "type")]``."""

    location: Literal["path", "query", "header"]
    name: str


class RouteParams(Model):
    """The parameters of one route; every field carries an ``In``."""

    model_config = ConfigDict(frozen=True)


@cache
def wire(model: type[RouteParams]) -> tuple[tuple[str, str, str], ...]:
    """(field, location, wire name) of each of the model's fields, once per model."""
    found = []
    for field, info in model.model_fields.items():
        where = next((m for m in info.metadata if isinstance(m, In)), None)
        if where is None:
            raise TypeError(f"{model.__name__}.{field} says not where it travels (In)")
        found.append((field, where.location, where.name))
    return tuple(found)


def read_params[P: RouteParams](request: Request, model: type[P]) -> P:
    """The route's parameters, validated in one call; ``Invalid`` (422) naming each
    refused one as ``<location>.<name>``, as FastAPI's own validation does."""
    sources = {"path": request.path_params, "query": request.query_params}
    values: dict[str, Any] = {}
    for field, location, name in wire(model):
        source = request.headers if location == "header" else sources[location]
        value = source.get(name)
        if value is not None:
            values[field] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        where = {field: (location, name) for field, location, name in wire(model)}
        errors = [
            err | {"loc": (*where[err["loc"][0]], *err["loc"][1:])} if err["loc"] else err
            for err in exc.errors()
        ]
        raise invalid_from(errors) from exc
