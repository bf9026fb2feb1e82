"""A ``Rendered`` answer (JSON made by PostgreSQL) is sent byte for byte, and
only by a route that declares its model for that status: the contract then
describes it as it describes the model's own rendering."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from starlette.responses import Response

from dev.invoke import LambdaContext
from practice.core.model import Model, Rendered
from practice.web import Call, Reply, Router, create_api, create_handler
from tests.support import http_event

pytestmark = pytest.mark.unit


class Page(Model):
    items: list[int]


class Other(Model):
    name: str


@dataclass(frozen=True, slots=True)
class RenderedPage(Rendered):
    model: ClassVar = Page
    body: bytes


BODY = b'{"items": [1, 2,3]}'  # spacing as PostgreSQL's, kept as it came


@pytest.fixture(scope="module")
def handler() -> Any:
    api = create_api(title="probe", max_body_bytes=1024, principal_of=lambda _request: None)
    router = Router()

    @router.get("/page", public=True, replies=[Reply(200, Page)])
    async def page(call: Call[None, None]) -> Response:
        return call.reply(200, RenderedPage(BODY))

    @router.get("/other", public=True, replies=[Reply(200, Other)])
    async def other(call: Call[None, None]) -> Response:
        return call.reply(200, RenderedPage(BODY))

    api.include(router)
    return create_handler(api.app, budget_seconds=5)


def test_a_rendered_answer_is_sent_as_it_came(handler: Any) -> None:
    response = handler(http_event("GET", "/page"), LambdaContext())
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    assert response["body"] == BODY.decode()
    assert Page.model_validate_json(response["body"]).items == [1, 2, 3]


def test_a_rendered_answer_of_a_model_the_route_does_not_declare_is_an_error(
    handler: Any,
) -> None:
    response = handler(http_event("GET", "/other"), LambdaContext())
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["status"] == 500
