"""What the HTTP plumbing takes from its frameworks beyond their documented API,
pinned: an upgrade that moves it fails here, not in production.

Everything else ``practice.web`` uses is public and documented: Starlette's app,
``add_route``, requests and responses; Mangum's ``custom_handlers``; pydantic's
``TypeAdapter.json_schemas`` and ``GenerateJsonSchema`` hooks; FastAPI's
``get_swagger_ui_html``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from mangum.handlers.api_gateway import HTTPGateway
from pydantic.json_schema import GenerateJsonSchema

from practice.web.handler import HttpApiEvent

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _pinned(package: str) -> str:
    for line in (ROOT / "layers/shared/requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned")


def test_mangums_http_gateway_still_builds_its_scope_as_a_property() -> None:
    # HttpApiEvent caches HTTPGateway's scope (built anew on every read upstream)
    # and keeps its infer() signature; both are Mangum internals.
    assert isinstance(inspect.getattr_static(HTTPGateway, "scope"), property)
    assert list(inspect.signature(HTTPGateway.infer).parameters) == ["event", "context", "config"]
    assert issubclass(HttpApiEvent, HTTPGateway)


def test_mangums_text_mime_types_are_still_a_list_of_strings() -> None:
    assert DEFAULT_TEXT_MIME_TYPES
    assert all(isinstance(t, str) for t in DEFAULT_TEXT_MIME_TYPES)


def test_pydantics_schema_hooks_we_override_still_exist() -> None:
    for hook in ("default_schema", "str_schema", "field_title_should_be_set"):
        assert callable(getattr(GenerateJsonSchema, hook)), hook


def test_the_frameworks_are_the_versions_this_was_written_against() -> None:
    from importlib.metadata import version

    for package in ("mangum", "starlette", "fastapi", "pydantic"):
        try:
            pinned = _pinned(package)
        except AssertionError:
            continue  # starlette comes with fastapi's pin
        assert version(package) == pinned, package
