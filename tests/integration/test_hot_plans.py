"""Every hot statement reaches its rows of scenario_attempts by primary key, under
whatever statistics its backend planned it.

The hot statements live in SECURITY INVOKER PL/pgSQL functions (0014) forced to
their generic plan (0015): a server connection plans each statement once and
keeps that plan for its whole life. A plan the planner found cheap on the
statistics of that moment therefore outlives them: one that reached a row
through the org's attempts (a seq scan, a bitmap scan of the org index and a
hash join) while the org was small keeps scanning the org as it grows, until
the next ANALYZE invalidates it. Only a plan that finds each row by its key is
right at every size, so that is what each statement's plan must be, on a tiny
table as on a large one, analyzed or not.

The evidence is the server's own: auto_explain, loaded into a superuser session
that then becomes the functions' login role (row-level security applies), logs
the plan of every statement as it runs, nested ones included: the statements
inside the function, the triggers its writes fire (the completion pipeline of a
submit) and the foreign-key checks. Each call runs in a session of its own, so
every plan in it is made on the statistics of the table at hand.

Sizes: a fresh database with a few attempts in one org, analyzed, and one org of
20,000 attempts among 21,000, analyzed and never analyzed. Not a tiny table
without statistics, nor one with an attempt or so per org: there the planner
estimates the org's attempts at one row, as many as the key finds, and breaks
that tie for the newest index (an org index) whatever the SQL says; the first
ANALYZE (autovacuum's, some 50 changes later) invalidates that plan and the
next call plans it by key. 20,000 is large enough: the generic plans of 0014 and
0015 already scan the org there (bitmap scans of the org index; for state a
bitmap scan of the key), while a keyed plan is the same at 20,000 as at 100,000,
so a larger table would only add seconds of seeding.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dev.postgres import APP_LOGIN, throwaway_database
from practice.attempts.recordings import _RECORD_RECORDING
from practice.attempts.service import LOG_ACTIVITY, SAVE_DRAFTS, STATES, SUBMIT
from practice.batch.service import VALIDATE
from practice.core.db import ENTER

RELATION = "scenario_attempts"
PRIMARY_KEY = "scenario_attempts_pkey"
# An index condition on the key column itself: `(id = $1)`, `(id = i.attempt_id)`,
# `(id = ANY ($2))`; the word boundary keeps out `org_id` and `attempt_id`.
KEY_CONDITION = re.compile(r"\bid = ")

# Superuser settings: every statement's plan, nested ones too, sent to the client
# as a NOTICE in JSON.
AUTO_EXPLAIN = {
    "auto_explain.log_min_duration": "0",
    "auto_explain.log_nested_statements": "on",
    "auto_explain.log_level": "notice",
    "auto_explain.log_format": "json",
}


# ---------------------------------------------------------------------------
# Capturing the plans a call runs
# ---------------------------------------------------------------------------


@dataclass
class PlanCapture:
    """A session whose backend reports the plan of each statement it runs."""

    conn: psycopg.Connection
    plans: list[dict[str, Any]] = field(default_factory=list)

    def notice(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        """Keep the plan auto_explain sent (``duration: … ms  plan:`` and the JSON)."""
        text = diagnostic.message_primary or ""
        head, found, plan = text.partition("plan:\n")
        if found and head.startswith("duration:"):
            self.plans.append(json.loads(plan))

    def call(self, context: dict[str, Any], statement: str, params: dict[str, Any]) -> list:
        """The rows of ``statement`` run as the app runs it (``Database.run``): the
        RLS context and the statement in one pipeline, one implicit transaction;
        the plans of this call only are kept."""
        self.plans.clear()
        with self.conn.pipeline():
            self.conn.execute(ENTER, context)
            cursor = self.conn.execute(statement, params)
        return cursor.fetchall()


@contextmanager
def capturing(admin_url: str, login: str = APP_LOGIN) -> Iterator[PlanCapture]:
    """A fresh backend (so a fresh plan cache) logging its plans, acting as ``login``.

    auto_explain's settings are superuser-only, so the session starts as the
    owner, loads and sets them, then becomes the functions' login role: the
    statements run with its grants and row-level security, as in Lambda.
    """
    with psycopg.connect(admin_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute("load 'auto_explain'")
        for name, value in AUTO_EXPLAIN.items():
            conn.execute("select set_config(%s, %s, false)", [name, value])
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(login)))
        capture = PlanCapture(conn)
        conn.add_notice_handler(capture.notice)
        yield capture


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``node`` and every node under it (init plans and sub-plans are children too)."""
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


def relation_reads(plan: dict[str, Any], relation: str = RELATION) -> list[dict[str, Any]]:
    """The nodes of one logged plan that read ``relation``'s rows (not the
    ModifyTable node that writes what its child found)."""
    return [
        node
        for node in plan_nodes(plan["Plan"])
        if node.get("Relation Name") == relation and node["Node Type"] != "ModifyTable"
    ]


def by_primary_key(node: dict[str, Any]) -> bool:
    """True for an index scan of the primary key with a condition on the key."""
    return (
        node["Node Type"] in {"Index Scan", "Index Only Scan"}
        and node.get("Index Name") == PRIMARY_KEY
        and bool(KEY_CONDITION.search(node.get("Index Cond", "")))
    )


def describe(node: dict[str, Any]) -> str:
    """One line naming how a node reaches its rows, for failure messages."""
    # A bitmap heap scan's indexes are its bitmap children (not the sub-plans of
    # its filter, such as a policy's lookup of org_members).
    bitmaps = [n for n in node.get("Plans", ()) if n.get("Parent Relationship") == "Outer"]
    indexes = [n["Index Name"] for b in bitmaps for n in plan_nodes(b) if "Index Name" in n]
    if "Index Name" in node:
        indexes.insert(0, node["Index Name"])
    condition = node.get("Index Cond") or node.get("Recheck Cond") or node.get("Filter") or ""
    return f"{node['Node Type']} ({', '.join(indexes) or 'no index'}) {condition[:120]}".strip()


# ---------------------------------------------------------------------------
# The tables: a few attempts, or one large org among others
# ---------------------------------------------------------------------------

SCENARIO = uuid.UUID("5ce0a710-0000-4000-8000-00000000b0b0")


@dataclass(frozen=True)
class Size:
    """How many attempts each org holds, and whether ANALYZE ran after loading."""

    name: str
    orgs: tuple[int, ...]
    analyzed: bool


SIZES = (
    Size("small", (5,), analyzed=True),
    Size("large", (20_000, 500, 500), analyzed=True),
    Size("large-never-analyzed", (20_000, 500, 500), analyzed=False),
)


@dataclass(frozen=True)
class Tables:
    """A database at one size, and who calls: a trainee of its first (largest) org."""

    size: Size
    admin_url: str
    org_id: uuid.UUID
    trainee: str

    def context(self) -> dict[str, Any]:
        """The trainee's RLS context, as ``Database`` sends it."""
        return {
            "org_id": self.org_id,
            "user_id": self.trainee,
            "role": "trainee",
            "statement_timeout": "10s",
        }

    def fresh_attempt(self) -> uuid.UUID:
        """A new in-progress attempt of the trainee, inserted as the owner."""
        with psycopg.connect(self.admin_url) as conn:
            (attempt_id,) = conn.execute(
                "insert into scenario_attempts (org_id, clerk_user_id, scenario_id)"
                " values (%s, %s, %s) returning id",
                [self.org_id, self.trainee, SCENARIO],
            ).fetchone()
        return attempt_id


# One attempt in five in progress, the others completed and scored, as a seeded
# history looks; the completed ones go through the completion triggers.
_ATTEMPTS = """
insert into scenario_attempts
       (org_id, clerk_user_id, scenario_id, status, started_at, ended_at,
        duration_seconds, score, answers)
select %(org)s, %(prefix)s || (g %% %(trainees)s), %(scenario)s,
       case when g %% 5 = 0 then 'in_progress' else 'completed' end::attempt_status,
       now() - g * interval '1 minute',
       case when g %% 5 = 0 then null
            else now() - g * interval '1 minute' + interval '9 minutes' end,
       case when g %% 5 = 0 then null else 540 end,
       case when g %% 5 = 0 then null else g %% 100 end,
       '{"q1": "yes"}'
  from generate_series(1, %(count)s) as g
"""


def populate(admin_url: str, size: Size) -> Tables:
    """Orgs of ``size.orgs`` attempts (about 60 per trainee), inserted as the owner."""
    orgs = [uuid.uuid4() for _ in size.orgs]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not size.analyzed:
            # Autovacuum would analyze the table within a minute of the load.
            conn.execute("alter table scenario_attempts set (autovacuum_enabled = false)")
        conn.execute(
            "insert into scenarios (id, title, org_id) values (%s, 'Hot plans', null)", [SCENARIO]
        )
        for k, (org_id, count) in enumerate(zip(orgs, size.orgs, strict=True)):
            prefix, trainees = f"user_hot_{k}_", max(6, math.ceil(count / 60))
            with conn.transaction():
                conn.execute(
                    "insert into orgs (id, clerk_org_id, name) values (%s, %s, %s)",
                    [org_id, f"org_hot_{k}", f"Hot plans {k}"],
                )
                conn.execute(
                    "insert into org_members (org_id, user_id, role)"
                    " select %s, %s || g, 'trainee' from generate_series(0, %s - 1) as g",
                    [org_id, prefix, trainees],
                )
                conn.execute(
                    _ATTEMPTS,
                    {
                        "org": org_id,
                        "prefix": prefix,
                        "trainees": trainees,
                        "scenario": SCENARIO,
                        "count": count,
                    },
                )
        if size.analyzed:
            conn.execute("analyze")
    return Tables(size, admin_url, orgs[0], "user_hot_0_0")


@pytest.fixture(scope="module")
def template(pg_server: str) -> Iterator[str]:
    """One migrated database whose copies (a file copy each) hold the sizes."""
    with throwaway_database(pg_server, "practice_hot_tpl") as created:
        yield created.name


@pytest.fixture(scope="module", params=SIZES, ids=lambda size: size.name)
def tables(request: pytest.FixtureRequest, pg_server: str, template: str) -> Iterator[Tables]:
    """A copy of the migrated template loaded to one size."""
    with throwaway_database(pg_server, "practice_hot", template=template) as db:
        yield populate(db.admin_url, request.param)


# ---------------------------------------------------------------------------
# The hot calls: add a row to cover another statement
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HotCall:
    """A statement the service sends, the parameters of one call on an in-progress
    attempt of the caller, and what proves the call took its whole path (so that
    every statement inside it, and every trigger its writes fire, ran)."""

    name: str
    statement: str
    params: Callable[[Tables, uuid.UUID], dict[str, Any]]
    took_whole_path: Callable[[list[dict[str, Any]]], bool]


def _items(tables: Tables, attempt_id: uuid.UUID, **item: Any) -> dict[str, Any]:
    """The parameters of a write of one item, as ``AttemptService`` builds them."""
    one = {"ord": 0, "attempt_id": str(attempt_id), **item}
    return {"org_id": tables.org_id, "user_id": tables.trainee, "items": Jsonb([one])}


HOT_CALLS = (
    HotCall(
        "attempt_states",
        STATES,
        lambda t, a: {"org_id": t.org_id, "ids": [a]},
        lambda rows: len(rows) == 1,
    ),
    HotCall(
        "attempt_save_drafts",
        SAVE_DRAFTS,
        lambda t, a: _items(t, a, expected_version=1, answers={"q1": "no"}),
        lambda rows: rows[0]["verdict"] == "ok",
    ),
    HotCall(
        "attempt_log_activity",
        LOG_ACTIVITY,
        lambda t, a: _items(t, a, events=[{"event_type": "focus_lost"}]),
        lambda rows: rows[0]["verdict"] == "ok" and rows[0]["inserted"] == 1,
    ),
    # Ends the attempt: the completion pipeline (practice_complete_attempts) runs.
    HotCall(
        "attempt_submit",
        SUBMIT,
        _items,
        lambda rows: rows[0]["verdict"] == "ended",
    ),
    HotCall(
        "validate_multiple_attempts",
        VALIDATE,
        lambda _t, a: {"ids": [a]},
        lambda rows: rows[0]["verdict"] == "ended",
    ),
    HotCall(
        "attempt_record_recording",
        _RECORD_RECORDING,
        lambda t, a: {
            "org_id": t.org_id,
            "user_id": t.trainee,
            "id": a,
            "key": f"recordings/{t.org_id}/{a}/{uuid.uuid4()}.webm",
        },
        lambda rows: rows[0]["verdict"] == "ok",
    ),
)


@pytest.mark.parametrize("call", HOT_CALLS, ids=lambda call: call.name)
def test_hot_call_reaches_attempts_by_primary_key(tables: Tables, call: HotCall) -> None:
    """Every plan the call runs, nested ones too, reads scenario_attempts by key only."""
    attempt_id = tables.fresh_attempt()
    with capturing(tables.admin_url) as capture:
        rows = capture.call(tables.context(), call.statement, call.params(tables, attempt_id))
        plans = list(capture.plans)
    assert call.took_whole_path(rows), rows

    reads = [(plan, node) for plan in plans for node in relation_reads(plan)]
    # Without auto_explain's plans the check below would pass on nothing.
    assert reads, f"{call.name}: no logged plan read {RELATION}"
    strays = [
        f"{describe(node)}\n      in: {' '.join(plan.get('Query Text', '').split())[:160]}"
        for plan, node in reads
        if not by_primary_key(node)
    ]
    assert not strays, (
        f"{call.name} on the {tables.size.name} table reaches {RELATION} other than by"
        f" {PRIMARY_KEY}:\n  - " + "\n  - ".join(strays)
    )
