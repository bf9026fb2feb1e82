"""The OpenAPI document of an HTTP function, made from its routes' declarations
(``practice.web.routes``): every parameter, body, answer, header and error the
routes read and write, including what API Gateway answers by itself.

Built when first asked for, never at a cold start. Written to be read by
third-party tools at their default settings: a property of a request body
carries no ``default`` (openapi-typescript would make it required; the
description says the default instead), and every member a response always
carries is ``required``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema, to_jsonable_python

from practice.core.model import TEXT_PATTERN
from practice.web.idempotency import HEADER as IDEMPOTENCY_KEY
from practice.web.idempotency import KEY_DESCRIPTION, KEY_PATTERN
from practice.web.params import wire
from practice.web.problems import PROBLEM_JSON, GatewayMessage, Problem
from practice.web.routes import REPLAYED, RETRY_AFTER, Api, Header, OneOf, Operation

BEARER = "clerkJwt"
_REF = "#/components/schemas/{model}"

# Why each error status comes back from the function.
WHEN = {
    400: "the body is not JSON (or names a member twice), or a header is malformed",
    401: "no verified identity came with the request",
    403: "the caller's role or organization does not allow it",
    404: "unknown, or not visible to the caller",
    405: "the path serves other methods (Allow names them)",
    409: "the resource's state forbids it (current_version, status_value say where it stands)",
    412: "If-Match names a version that is no longer current (current_version is)",
    413: "the body is larger than the function's limit",
    415: "the body is not application/json",
    422: "a parameter or field is invalid; errors[] names each",
    428: "a conditional write came without its version",
    503: "the database is unavailable; retry after Retry-After seconds",
}
# What API Gateway answers by itself, as {"message": ...}, before or instead of
# the function: its JWT authorizer (401), its payload limit (413), throttling
# (429), a function that failed or timed out (500, 503).
GATEWAY = {
    401: "API Gateway's JWT authorizer found no valid token",
    413: "the body exceeds API Gateway's 10 MB limit",
    429: "API Gateway throttled the request",
    500: "the function failed (API Gateway's answer)",
    503: "the function did not answer in time (API Gateway's answer)",
}


class ContractSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, as generators read it best: no ``default`` on a
    property (its description says it), no title on a property."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        """The field's schema without ``default``; a non-null default is described."""
        json_schema = super().default_schema(schema)
        default = json_schema.pop("default", None)
        if default is not None and default != {} and "$ref" not in json_schema:
            note = f"Default: {to_jsonable_python(default)}."
            existing = json_schema.get("description")
            json_schema["description"] = f"{existing} {note}" if existing else note
        return json_schema

    def field_title_should_be_set(self, _schema: Any) -> bool:
        """Properties carry no title: their name says it."""
        return False

    def str_schema(self, schema: core_schema.StrSchema) -> JsonSchemaValue:
        """A string as PostgreSQL stores it: without NUL, unless a pattern says more."""
        json_schema = super().str_schema(schema)
        json_schema.setdefault("pattern", TEXT_PATTERN)
        return json_schema


def _header(header: Header) -> dict[str, Any]:
    return {"description": header.description, "schema": header.schema}


class _Schemas:
    """Every schema the document refers to, generated in one pass so a model
    used in requests and answers is named once per shape."""

    def __init__(self) -> None:
        self._wanted: list[tuple[Any, str, TypeAdapter[Any]]] = []
        self.generated: dict[tuple[Any, str], Any] = {}
        self.components: dict[str, Any] = {}

    def want(self, key: Any, kind: Any, mode: str) -> Any:
        self._wanted.append((key, mode, TypeAdapter(kind)))
        return key

    def build(self) -> None:
        generated, definitions = TypeAdapter.json_schemas(
            self._wanted, ref_template=_REF, schema_generator=ContractSchema
        )
        self.generated = generated
        self.components = definitions.get("$defs", {})

    def of(self, key: Any, mode: str) -> Any:
        return self.generated[(key, mode)]

    def inline(self, key: Any, mode: str) -> Any:
        """The schema itself, not a reference to it (a route's parameters are
        documented one by one, not as a component)."""
        schema = self.generated[(key, mode)]
        ref = schema.get("$ref")
        if ref is None:
            return schema
        return self.components[ref.rsplit("/", 1)[1]]


def _operation_entry(operation: Operation, schemas: _Schemas) -> dict[str, Any]:
    doc = (operation.endpoint.__doc__ or "").strip()
    summary, _, rest = doc.partition("\n")
    entry: dict[str, Any] = {"operationId": operation.name, "summary": summary.strip()}
    description = " ".join(line.strip() for line in rest.splitlines()).strip()
    if operation.seed_path is not None:
        form = f"{operation.method} {operation.seed_path}?action={operation.action}"
        description = f"{description} Also served at its ?action= form, {form}.".strip()
        entry["x-seed-form"] = form
    if description:
        entry["description"] = description
    parameters = _parameters(operation, schemas)
    if parameters:
        entry["parameters"] = parameters
    documented_body = operation.body if operation.body is not None else operation.raw_body
    if documented_body is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": schemas.of((operation.name, "body"), "validation")}
            },
        }
    entry["responses"] = _responses(operation, schemas)
    if not operation.public:
        entry["security"] = [{BEARER: []}]
    return entry


def _parameters(operation: Operation, schemas: _Schemas) -> list[dict[str, Any]]:
    documented = []
    if operation.params is not None:
        schema = schemas.inline((operation.name, "params"), "validation")
        properties, required = schema.get("properties", {}), set(schema.get("required", ()))
        for field, location, name in wire(operation.params):
            prop = dict(properties[field])
            entry: dict[str, Any] = {
                "name": name,
                "in": location,
                "required": location == "path" or field in required,
            }
            if "description" in prop:
                entry["description"] = prop.pop("description")
            # An absent parameter is the optional one's None: on the wire it is
            # never null, so the schema is the value's alone.
            values = [s for s in prop.get("anyOf", ()) if s != {"type": "null"}]
            if len(values) == 1 and len(prop["anyOf"]) == 2:
                prop = {k: v for k, v in prop.items() if k != "anyOf"} | values[0]
            entry["schema"] = prop
            documented.append(entry)
    if operation.idempotent:
        documented.append(
            {
                "name": IDEMPOTENCY_KEY,
                "in": "header",
                "required": False,
                "description": KEY_DESCRIPTION,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": KEY_PATTERN,
                },
            }
        )
    return documented


def _error_statuses(operation: Operation) -> set[int]:
    # What the function may answer besides what the route names: the caller
    # (401, 403), the key (409), the body (400, 413, 415), any request (422, 503).
    errors = set(operation.errors) | {422, 503}
    if not operation.public:
        errors |= {401, 403}
    if operation.idempotent:
        errors.add(409)
    if operation.body is not None or operation.raw_body is not None:
        errors |= {400, 413, 415}
    return errors


def _responses(operation: Operation, schemas: _Schemas) -> dict[str, Any]:
    # status -> (descriptions, media type -> schemas, headers); a status the
    # function and API Gateway both answer lists both media types.
    found: dict[int, tuple[list[str], dict[str, list[Any]], dict[str, Any]]] = {}

    def add(status: int, description: str, media: str | None, schema: Any, headers: Any) -> None:
        descriptions, content, all_headers = found.setdefault(status, ([], {}, {}))
        descriptions.append(description)
        if media is not None:
            content.setdefault(media, []).append(schema)
        all_headers.update(headers)

    for index, reply in enumerate(operation.replies):
        headers = {h.name: _header(h) for h in reply.headers}
        if operation.idempotent and reply.status < 300:
            headers[REPLAYED.name] = _header(REPLAYED)
        schema = None
        if reply.model is not None:
            schema = schemas.of((operation.name, "reply", index), "serialization")
        media = "application/json" if reply.model is not None else None
        add(
            reply.status,
            reply.description or HTTPStatus(reply.status).phrase,
            media,
            schema,
            headers,
        )
    errors = _error_statuses(operation)
    problem = {"$ref": _REF.format(model="Problem")}
    gateway = {"$ref": _REF.format(model="GatewayMessage")}
    retry = {RETRY_AFTER.name: _header(RETRY_AFTER)}
    for status in sorted(errors):
        headers = retry if status == 503 or (status == 409 and operation.idempotent) else {}
        if status == 405:
            headers = {
                "Allow": {
                    "description": "The methods the path serves.",
                    "schema": {"type": "string"},
                }
            }
        add(status, WHEN.get(status, HTTPStatus(status).phrase), PROBLEM_JSON, problem, headers)
    for status, description in GATEWAY.items():
        bodiless = operation.body is None and operation.raw_body is None
        if (status == 401 and operation.public) or (status == 413 and bodiless):
            continue
        add(status, description, "application/json", gateway, retry if status == 429 else {})
    responses: dict[str, Any] = {}
    for status in sorted(found):
        descriptions, content, headers = found[status]
        answer: dict[str, Any] = {"description": "; or ".join(descriptions)}
        if headers:
            answer["headers"] = headers
        if content:
            answer["content"] = {
                media: {"schema": listed[0] if len(listed) == 1 else {"anyOf": listed}}
                for media, listed in content.items()
            }
        responses[str(status)] = answer
    return responses


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def _renamed(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[1] in names:
            return {"$ref": _REF.format(model=names[ref.rsplit("/", 1)[1]])}
        return {key: _renamed(value, names) for key, value in node.items()}
    if isinstance(node, list):
        return [_renamed(item, names) for item in node]
    return node


def _tidy(paths: dict[str, Any], components: dict[str, Any]) -> tuple[dict, dict]:
    """Only the schemas the paths reach; a schema pydantic named "-Input" because
    its answer form differed keeps its own name when only one form is reached."""
    reached, frontier = set(), _refs(paths)
    while frontier:
        reached |= frontier
        frontier = set().union(*(_refs(components[name]) for name in frontier)) - reached
    kept = {name: components[name] for name in sorted(reached)}
    forms = ("-Input", "-Output")
    bases = [name.rsplit("-", 1)[0] for name in kept if name.endswith(forms)]
    names = {
        name: base
        for name in kept
        if name.endswith(forms)
        and (base := name.rsplit("-", 1)[0]) not in kept
        and bases.count(base) == 1
    }
    return _renamed(paths, names), {names.get(n, n): _renamed(v, names) for n, v in kept.items()}


def build_contract(api: Api, *, title: str, version: str = "1.0.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``api``'s routes."""
    schemas = _Schemas()
    schemas.want("Problem", Problem, "serialization")
    schemas.want("GatewayMessage", GatewayMessage, "serialization")
    for operation in api.operations:
        if operation.params is not None:
            schemas.want((operation.name, "params"), operation.params, "validation")
        body = operation.body if operation.body is not None else operation.raw_body
        if body is not None:
            body = body.union() if isinstance(body, OneOf) else body
            schemas.want((operation.name, "body"), body, "validation")
        for index, reply in enumerate(operation.replies):
            if reply.model is not None:
                schemas.want((operation.name, "reply", index), reply.model, "serialization")
    schemas.build()
    paths: dict[str, dict[str, Any]] = {}
    for operation in api.operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation_entry(
            operation, schemas
        )
    paths, components = _tidy(paths, schemas.components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
