"""The base of every model in the layer, and the JSON document a model may carry."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# What PostgreSQL stores as text and jsonb: any string without a NUL character
# (the request reader refuses one anywhere in a body, practice.web.body).
TEXT_PATTERN = "^[^\\u0000]*$"
type Text = Annotated[str, Field(pattern=TEXT_PATTERN)]
# Any JSON, as three schemas a generated TypeScript client can name: its
# recursion passes through the object (an index signature), never through a
# bare union. An array of arrays is not described (it is accepted all the same).
type JsonItem = bool | int | float | Text | JsonObject | None
type JsonMember = bool | int | float | Text | JsonObject | list[JsonItem] | None
type JsonObject = dict[Text, JsonMember]


def _as_sent(value: Any) -> Any:
    return value


# A free-form JSON object (answers, drafts, metadata, payloads): taken as sent
# (the reader checked it is storable) and documented as the JSON it may hold.
Document = Annotated[dict[str, Any], BeforeValidator(_as_sent, json_schema_input_type=JsonObject)]


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer is a number without a fraction (3 and 3.0 alike);
    # a string or a boolean that happens to convert is none.
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The validator of an integer as a client sends it in JSON, last in its
# Annotated (``Annotated[int, Field(ge=1), JSON_INTEGER]``) so the bounds stay in
# its schema.
JSON_INTEGER = BeforeValidator(_json_integer)


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use.

    Building them at import made every cold start pay for models most
    invocations never touch (a function imports every model of its routes;
    a request uses two or three). Every member of an answer is always sent, so
    its schema lists each as required (``practice.web.contract``).
    """

    model_config = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)


class Rendered:
    """An answer whose JSON was made where its data lives (PostgreSQL), sent as
    is: ``body`` is a document of ``model``, the model its route declares (and
    the contract describes), so it is never parsed and serialized again here.

    What makes ``body`` a true ``model`` document is the SQL that renders it and
    the test that holds it equal to ``model``'s own rendering of the same rows;
    ``practice.web.routes.Call.reply`` sends it only for a route declaring
    ``model``.
    """

    __slots__ = ()
    model: ClassVar[type[BaseModel]]
    body: bytes
