"""Builders shared by the integration and end-to-end tests: API Gateway HTTP API
v2 events (as `sam local generate-event apigateway http-api-proxy` shapes them)
and a small tenant world inserted as the schema owner."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg

from dev.gateway import HttpRequest, build_event
from dev.invoke import LambdaContext

__all__ = ["LambdaContext"]

ROOT = Path(__file__).resolve().parents[1]


def run_dev(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m dev <args>`` from the repo root with ``env`` added; fails on a timeout."""
    return subprocess.run(
        [sys.executable, "-m", "dev", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env},
        check=False,
    )


@dataclass(frozen=True)
class User:
    """A member of an org, and the claims API Gateway would pass for them."""

    user_id: str
    clerk_org_id: str
    role: str
    org_id: uuid.UUID
    manager_user_id: str | None = None

    def claims(self, v1: bool = False) -> dict[str, str]:
        """Claims rendered as API Gateway renders them: every value a string."""
        now = int(time.time())
        base = {"sub": self.user_id, "iat": str(now), "exp": str(now + 3600), "iss": "test"}
        if v1:
            return base | {"org_id": self.clerk_org_id, "org_role": f"org:{self.role}"}
        org = {"id": self.clerk_org_id, "rol": self.role, "slg": self.clerk_org_id}
        return base | {"v": "2", "o": json.dumps(org)}


def http_event(
    method: str,
    path: str,
    *,
    user: User | None = None,
    claims: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    route: str | None = None,
    path_parameters: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An HTTP API payload-2.0 event with JWT authorizer claims, built as the
    local gateway builds them (``base64_body`` as the SAM CLI's sample has it)."""
    raw = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    all_headers = [("Host", "localhost"), ("User-Agent", "pytest")]
    if raw:
        all_headers += [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
    all_headers += list((headers or {}).items())
    target = f"{path}?{urlencode(query)}" if query else path
    event = build_event(
        HttpRequest(method, target, all_headers, raw),
        route_key=f"{method} {route or path}",
        path_parameters=path_parameters,
        claims=claims if claims is not None else (user.claims() if user else None),
    )
    if base64_body and raw:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    return event


@dataclass
class World:
    """Two orgs with admins, managers, teams and trainees, and their scenarios."""

    orgs: dict[str, uuid.UUID] = field(default_factory=dict)
    org_names: dict[str, str] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    scenarios: dict[str, uuid.UUID] = field(default_factory=dict)
    assignments: dict[str, uuid.UUID] = field(default_factory=dict)


def build_world(admin_url: str) -> World:
    """Insert the test world as the schema owner (RLS does not apply to it)."""
    tag = uuid.uuid4().hex[:6]
    world = World()
    members = {
        "a": [
            ("admin_a", "admin", None),
            ("manager_a", "manager", None),
            ("trainee_a1", "trainee", "manager_a"),
            ("trainee_a2", "trainee", "manager_a"),
            ("manager_a2", "manager", None),
            ("trainee_a3", "trainee", "manager_a2"),
        ],
        "b": [("admin_b", "admin", None), ("trainee_b1", "trainee", None)],
    }
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for org_key, people in members.items():
            clerk_org = f"org_{org_key}_{tag}"
            world.org_names[org_key] = f"Org {org_key.upper()} {tag}"
            org_id = conn.execute(
                "insert into orgs (clerk_org_id, name) values (%s, %s) returning id",
                [clerk_org, world.org_names[org_key]],
            ).fetchone()[0]
            world.orgs[org_key] = org_id
            for name, role, manager in people:
                user_id = f"user_{name}_{tag}"
                manager_id = f"user_{manager}_{tag}" if manager else None
                conn.execute(
                    "insert into org_members (org_id, user_id, role, manager_user_id,"
                    " display_name, email) values (%s, %s, %s, %s, %s, %s)",
                    [
                        org_id,
                        user_id,
                        role,
                        manager_id,
                        name.replace("_", " ").title(),
                        f"{name}@{org_key}.example",
                    ],
                )
                world.users[name] = User(user_id, clerk_org, role, org_id, manager_id)
            world.scenarios[org_key] = conn.execute(
                "insert into scenarios (org_id, title, description, role, difficulty,"
                " instructions, context, visibility) values (%s, %s, 'desc', 'sales',"
                " 'beginner', 'instr', 'ctx', 'org') returning id",
                [org_id, f"Cold call {org_key} {tag}"],
            ).fetchone()[0]
        world.scenarios["builtin"] = conn.execute(
            "insert into scenarios (org_id, title, description, role, difficulty, instructions,"
            " context, visibility) values (null, %s, 'desc', 'sales', 'intermediate', 'instr',"
            " 'ctx', 'public') returning id",
            [f"Objection handling {tag}"],
        ).fetchone()[0]
        world.assignments["a1"] = conn.execute(
            "insert into assignments (org_id, scenario_id, assignee_user_id, assigned_by_user_id,"
            " due_at, required) values (%s, %s, %s, %s, now() + interval '7 days', true)"
            " returning id",
            [
                world.orgs["a"],
                world.scenarios["a"],
                world.users["trainee_a1"].user_id,
                world.users["manager_a"].user_id,
            ],
        ).fetchone()[0]
    return world
