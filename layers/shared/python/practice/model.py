"""The base of every model in the layer."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built on first use.

    Building them at import cost every cold start about 15 ms for models most
    invocations never touch (a function imports every model of its routes;
    a request uses two or three).
    """

    model_config = ConfigDict(defer_build=True)
