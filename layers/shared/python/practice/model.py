"""The base of every model in the layer, and the JSON document a model may carry."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, WithJsonSchema

# What PostgreSQL stores as text and jsonb: any string without a NUL character
# (the request reader refuses one anywhere in a body, practice.web.body).
TEXT_PATTERN = "^[^\\u0000]*$"
JSON_VALUE = "JsonValue"
_VALUE_REF = {"$ref": f"#/components/schemas/{JSON_VALUE}"}

# A free-form JSON object (answers, drafts, metadata, payloads), as the contract
# describes it: members and strings without NUL, values any JSON (JSON_VALUE_SCHEMA).
Document = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": TEXT_PATTERN},
            "additionalProperties": _VALUE_REF,
        }
    ),
]
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value whose strings (and member names) hold no NUL character.",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "number"},
        {"type": "string", "pattern": TEXT_PATTERN},
        {"type": "array", "items": _VALUE_REF},
        {
            "type": "object",
            "propertyNames": {"pattern": TEXT_PATTERN},
            "additionalProperties": _VALUE_REF,
        },
    ],
}


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use.

    Building them at import cost every cold start about 15 ms for models most
    invocations never touch (a function imports every model of its routes;
    a request uses two or three). Every member of an answer is always sent, so
    its schema lists each as required (``practice.web.contract``).
    """

    model_config = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)
