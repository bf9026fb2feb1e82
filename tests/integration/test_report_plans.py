"""The recent-attempts dashboard pages an org's facts through
idx_fact_attempts_org_started, newest first, and stops at the page: its
generic plan (the one a pooled connection keeps once the statement is
prepared) never sorts the org's facts, whichever filters the caller sets."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from practice.reporting.dashboards import recent_statement
from tests.conftest import MigratedDatabase

TYPES = {
    "manager": "text",
    "from": "timestamptz",
    "to": "timestamptz",
    "scenario": "uuid",
    "after_at": "timestamptz",
    "after_id": "uuid",
    "limit": "integer",
}


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", ()) for node in _nodes(child))]


def _generic_plan(conn: psycopg.Connection, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan PostgreSQL keeps for the statement, as the functions' role with
    the admin's RLS context: prepared with typed parameters, generic forced."""
    names = list(TYPES)
    text = re.sub(
        r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", recent_statement(filters)
    )
    # Client-side binding (PREPARE and EXPLAIN take no protocol parameters).
    client = psycopg.ClientCursor(conn)
    client.execute(f"prepare recent({', '.join(TYPES.values())}) as {text}")
    values = ", ".join(f"%s::{kind}" for kind in TYPES.values())
    client.execute(
        f"explain (format json) execute recent({values})", [filters.get(n) for n in names]
    )
    (plan,) = client.fetchone()[0]
    conn.execute("deallocate recent")
    return _nodes(plan["Plan"])


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"from": datetime.now(UTC) - timedelta(days=30)},
        {"manager": "plan_manager"},
        {"after_at": datetime.now(UTC) - timedelta(days=3), "after_id": uuid.uuid4()},
    ],
    ids=["none", "from", "team", "next-page"],
)
def test_recent_attempts_walk_the_org_newest_first(
    database: MigratedDatabase, filters: dict[str, Any]
) -> None:
    with psycopg.connect(database.admin_url, autocommit=True) as owner:
        org = owner.execute(
            "insert into orgs (clerk_org_id, name) values (%s, 'plans') returning id",
            [f"org_plans_{uuid.uuid4().hex[:8]}"],
        ).fetchone()[0]
        owner.execute(
            "insert into org_members (org_id, user_id, role) values (%s, 'plan_admin', 'admin'),"
            " (%s, 'plan_manager', 'manager')",
            [org, org],
        )
        owner.execute(
            "insert into fact_scenario_attempts (attempt_id, org_id, user_id, score, started_at,"
            " ended_at) select gen_random_uuid(), %s, 'plan_user_' || (i %% 40), i %% 100,"
            " now() - i * interval '7 minutes',"
            " now() - i * interval '7 minutes' + interval '5 minutes'"
            " from generate_series(1, 20000) i",
            [org],
        )
        owner.execute("analyze fact_scenario_attempts")
    with psycopg.connect(database.app_url) as conn:
        conn.execute("select practice_enter(%s, 'plan_admin', 'admin', '10s')", [org])
        conn.execute("set local plan_cache_mode = force_generic_plan")
        nodes = _generic_plan(conn, {**filters, "limit": 26})
        conn.rollback()
    facts = [n for n in nodes if n.get("Relation Name") == "fact_scenario_attempts"]
    assert facts
    assert not [n for n in facts if n["Node Type"] == "Seq Scan"], facts
    if "manager" in filters:
        # A team's facts may be reached member by member and sorted: that reads
        # the team's history, never the org's.
        member_indexes = {
            "idx_fact_attempts_org_started",
            "idx_fact_attempts_user_date",
            "idx_fact_attempts_covering",
        }
        assert {n.get("Index Name") for n in _index_reads(nodes)} <= member_indexes, facts
        return
    assert [n.get("Index Name") for n in facts] == ["idx_fact_attempts_org_started"], facts
    assert not [n for n in nodes if n["Node Type"] == "Sort"], nodes


def _index_reads(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [n for n in nodes if n.get("Index Name", "").startswith("idx_fact")]
