"""The local gateway end to end: a real HTTP server on a free port, template
routes, the JWT authorizer, and the attempts function against the test database
(running as the Lambda's login role, so RLS applies)."""

from __future__ import annotations

import secrets
import socket
import uuid

import psycopg
import pytest

from dev import tokens
from dev.gateway import GatewayServer
from dev.postgres import MigratedDatabase
from dev.template import http_routes, load_template
from tests.e2e.conftest import Served

# In-process functions flush (disabled) metrics after every call; Powertools says so.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(scope="module")
def member(database: MigratedDatabase) -> dict[str, str]:
    """An org and its manager, inserted as the schema owner."""
    clerk_org = f"org_gw_{secrets.token_hex(4)}"
    user = f"user_gw_{secrets.token_hex(4)}"
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        (org_id,) = conn.execute(
            "insert into orgs (clerk_org_id, name, slug) values (%s, %s, %s) returning id",
            [clerk_org, "Gateway Test Org", clerk_org.replace("_", "-")],
        ).fetchone()
        conn.execute(
            "insert into org_members (org_id, user_id, role, display_name, email)"
            " values (%s, %s, 'manager', %s, %s)",
            [org_id, user, "Gina Gateway", "gina@example.com"],
        )
    return {"org_id": str(org_id), "clerk_org_id": clerk_org, "user_id": user}


def test_every_template_route_is_registered(served: Served) -> None:
    declared = {route.route_key: route for route in http_routes(load_template())}
    registered = {route.route_key: route for route in served.gateway.routes}
    assert set(registered) == set(declared)
    assert len(served.gateway.routes) == len(declared)
    for key, route in declared.items():
        assert registered[key].function.logical_id == route.function.logical_id
        assert registered[key].authorizer == route.authorizer


def test_health_needs_no_token(served: Served) -> None:
    response = served.client.get("/health")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok"
    assert response.headers["apigw-requestid"]


@pytest.mark.parametrize("case", ["missing", "expired", "wrong-audience", "wrong-issuer", "forged"])
def test_me_refuses_bad_tokens_without_calling_the_function(
    served: Served, member: dict[str, str], case: str
) -> None:
    org, user = member["clerk_org_id"], member["user_id"]
    headers = {}
    if case == "expired":
        headers["Authorization"] = "Bearer " + served.token(org, user, "manager", exp=1_000_000)
    elif case == "wrong-audience":
        headers["Authorization"] = "Bearer " + served.token(org, user, "manager", aud="nope")
    elif case == "wrong-issuer":
        headers["Authorization"] = "Bearer " + served.token(
            org, user, "manager", iss="https://evil.example"
        )
    elif case == "forged":
        claims = tokens.build_claims(
            org=org, user=user, role="admin", issuer=served.issuer, audience=served.audience
        )
        headers["Authorization"] = "Bearer " + tokens.sign(claims, tokens.generate_keys())
    before = served.gateway.invocations["AttemptsFunction"]
    response = served.client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert served.gateway.invocations["AttemptsFunction"] == before


@pytest.mark.parametrize("v1", [False, True], ids=["clerk-v2", "clerk-v1"])
def test_me_with_a_valid_token(served: Served, member: dict[str, str], v1: bool) -> None:
    token = tokens.sign(
        tokens.build_claims(
            org=member["clerk_org_id"],
            user=member["user_id"],
            role="manager",
            issuer=served.issuer,
            audience=served.audience,
            v1=v1,
        ),
        served.keys,
    )
    response = served.client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == member["user_id"]
    assert body["role"] == "manager"
    assert body["org"]["clerk_org_id"] == member["clerk_org_id"]
    assert body["org"]["id"] == member["org_id"]
    assert body["membership"]["display_name"] == "Gina Gateway"


def test_unknown_route_is_404_message(served: Served) -> None:
    response = served.client.get("/definitely/not/a/route")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    # A known path with a method the template does not route is just as unknown.
    assert served.client.delete("/health").status_code == 404


def test_path_parameters_reach_the_function(served: Served, member: dict[str, str]) -> None:
    token = served.token(member["clerk_org_id"], member["user_id"], "manager")
    missing = uuid.uuid4()
    response = served.client.get(
        f"/attempts/{missing}",
        params={"action": "state"},
        headers={"Authorization": f"Bearer {token}"},
    )
    # Routed through {attemptId}: the function answers (a problem document), not the gateway.
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_cors_preflight_from_the_template(served: Served) -> None:
    response = served.client.options(
        "/me",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "GET" in response.headers["access-control-allow-methods"]


def test_keep_alive_serves_many_requests_on_one_connection(served: Served) -> None:
    statuses = {served.client.get("/health").status_code for _ in range(20)}
    assert statuses == {200}


def test_head_answers_like_get_without_a_body(served: Served) -> None:
    get, head = served.client.get("/health"), served.client.head("/health")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == get.headers["content-type"]


def test_a_redirect_never_names_the_host_the_client_sent(
    served: Served, member: dict[str, str]
) -> None:
    # /me/ reaches GET /me; the function's trailing-slash redirect is built
    # from the Host it sees, which must be the gateway's own.
    token = served.token(member["clerk_org_id"], member["user_id"], "manager")
    response = served.client.get(
        "/me/", headers={"Host": "evil.example", "Authorization": f"Bearer {token}"}
    )
    assert 300 <= response.status_code < 400, response.text
    assert "evil.example" not in response.headers["location"]
    assert response.headers["location"] in ("/me", f"{served.url}/me")


def test_docs_and_the_openapi_document_are_the_functions_own(served: Served) -> None:
    before = served.gateway.invocations["AttemptsFunction"]
    assert served.client.get("/openapi.json").status_code == 200
    assert served.client.get("/docs").status_code == 200
    assert served.gateway.invocations["AttemptsFunction"] == before + 2


def test_a_burst_of_50_connections_is_queued_not_refused(served: Served) -> None:
    # Nothing accepts while the server is not serving yet, so every connection
    # waits in the listen backlog: socketserver's default of 5 drops the rest.
    burst = GatewayServer(served.gateway, "127.0.0.1", 0)
    sockets = []
    try:
        for _ in range(50):
            sockets.append(socket.create_connection(burst.server_address[:2], timeout=3))
        burst.start()
        for sock in sockets:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for sock in sockets:
            assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    finally:
        for sock in sockets:
            sock.close()
        burst.stop()
