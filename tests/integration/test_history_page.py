"""The history page PostgreSQL renders (0029's get_user_scenario_attempts_page,
sent as is by ``TrackingService.history``) is the document pydantic rendered
from 0021's rows before it: the same members in the same order, the same
strings (instants, ids, text) and the same numbers, a float still a float.
Only the documents' spacing may differ, so each side is compared after one
normalization (parsed, then written compactly).

Over crafted attempts: instants with and without microseconds, in UTC and in
two other session time zones; whole, fractional, long and tiny scores, and
none; documents with nested values, escapes and non-ASCII text, JSON null and
none; the keyset pages and the scenario filter. Each page also validates
against the contract's schema of the answer. A document that is not an object
is refused, as the model refused it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb
from pydantic import TypeAdapter

from dev.postgres import APP_LOGIN, with_user
from practice.core.cache import TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.identity import Principal, Role
from practice.core.keyset import instant_cursor, next_cursor, read_instant
from practice.tracking.models import AttemptHistory, HistoryAttempt, HistoryPage
from practice.tracking.service import TrackingService
from practice.web.contract import ContractSchema
from tests.conftest import MigratedDatabase
from tests.support import User, World, build_world

# 0021's function, as the service sent it before 0029.
ROWS = (
    "select * from get_user_scenario_attempts(%(org_id)s, %(member)s, %(scenario_id)s,"
    " %(limit)s, %(before_at)s, %(before_id)s)"
)
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

SCORES = [
    None,
    Decimal(90),
    Decimal("72.9"),
    Decimal("72.90"),
    Decimal("33.333333333333333333"),
    Decimal(0),
    Decimal(100),
    Decimal("0.5"),
    Decimal("0.0001"),
    Decimal("0.00001"),
    Decimal("99.99"),
]
DOCUMENTS: list[Any] = [
    None,
    {},
    {"closing": 76, "opening": 87.5, "ratio": 0.1, "big": 12345678901234567890},
    {
        "events": [
            {"event_type": "interruption", "event_value": {"by": "trainee"}, "timestamp_ms": 1},
            {"event_type": "objection_raised", "event_value": {"handled": True}},
        ],
        "nested": {"empty": [], "none": None, "flag": False, "list": [1, 2.5, "x", None]},
    },
    {'quote"key': 'a "quoted" \\ back\\slash', "tab": "a\tb\nc\r\u0001\u001f\u007f"},
    {"ünïcödé": "日本語 — emoji 🎯, line\u2028separator", "slash": "a/b"},
    {"whole": 1.0, "exp": 1e-7, "neg": -3, "long": 0.30000000000000004},
]
TEXTS = [
    None,
    "",
    'Strong opening. "Quoted", back\\slash, tab\there, new\nline.',
    "Ünïcödé — 日本語 🎯",
]
MICROSECONDS = [0, 500000, 120000, 1, 999999, 123456]
# What the contract promises of the answer: the model's schema as the contract
# generates it (practice.web.contract).
CONTRACT = Draft202012Validator(
    TypeAdapter(AttemptHistory).json_schema(mode="serialization", schema_generator=ContractSchema),
    format_checker=FormatChecker(),
)


def insert(conn: psycopg.Connection, user: User, scenario: uuid.UUID, **values: Any) -> None:
    values = {
        "id": uuid.uuid4(),
        "org_id": user.org_id,
        "clerk_user_id": user.user_id,
        "scenario_id": scenario,
        "status": "completed",
    } | values
    for name in ("score_breakdown", "kpis"):
        if isinstance(values.get(name), dict | list | str | int):
            values[name] = Jsonb(values[name])
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    conn.execute(f"insert into scenario_attempts ({columns}) values ({placeholders})", values)


@pytest.fixture(scope="module")
def world(database: MigratedDatabase) -> World:
    """A world of this module's own, its trainees' histories crafted."""
    world = build_world(database.admin_url)
    trainee = world.users["trainee_a1"]
    other = world.scenarios["a"]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        world.scenarios["second"] = conn.execute(
            "insert into scenarios (org_id, title, difficulty, visibility)"
            " values (%s, 'Second', 'beginner', 'org') returning id",
            [trainee.org_id],
        ).fetchone()[0]
        for i in range(60):
            started = T0 + timedelta(hours=i, microseconds=MICROSECONDS[i % len(MICROSECONDS)])
            ended = None if i % 7 == 3 else started + timedelta(minutes=5, microseconds=i)
            insert(
                conn,
                trainee,
                world.scenarios["second"] if i % 3 == 0 else other,
                started_at=started,
                ended_at=ended,
                duration_seconds=None if i % 5 == 4 else 300 + i,
                score=SCORES[i % len(SCORES)],
                score_breakdown=DOCUMENTS[i % len(DOCUMENTS)],
                kpis=DOCUMENTS[(i + 3) % len(DOCUMENTS)],
                feedback_text=TEXTS[i % len(TEXTS)],
            )
        # Two at the same instant: the keyset breaks the tie by id.
        for _ in range(2):
            insert(conn, trainee, other, started_at=T0 + timedelta(days=30), score=Decimal(50))
        # JSON null stored as a document.
        insert(
            conn,
            trainee,
            other,
            started_at=T0 - timedelta(days=1),
            score_breakdown=Jsonb(None),
            kpis=Jsonb(None),
        )
        # Not completed: never on the page.
        insert(conn, trainee, other, started_at=T0 + timedelta(days=40), status="abandoned")
    return world


@pytest.fixture(scope="module", params=["UTC", "Asia/Kolkata", "America/New_York"])
def db(request: pytest.FixtureRequest, database: MigratedDatabase) -> Iterator[Database]:
    """The functions' pool, its sessions in one time zone. Straight to the server
    as the functions' login: a transaction pooler (the suite's PgBouncer run)
    refuses the startup parameter that sets a session's time zone."""
    direct = with_user(database.admin_url, APP_LOGIN)
    url = make_conninfo(direct, options=f"-c TimeZone={request.param}")
    pool = Database(Settings(database_url=url, db_pool_min=1, db_pool_max=1))
    pool.open()
    try:
        yield pool
    finally:
        pool.close()


def as_before(
    db: Database,
    principal: Principal,
    scenario_id: uuid.UUID | None,
    limit: int,
    cursor: str | None,
) -> str:
    """The page as the service rendered it before 0029: 0021's rows through the model."""
    after = read_instant(cursor)
    params = {
        "org_id": principal.org_id,
        "member": principal.user_id,
        "scenario_id": scenario_id,
        "limit": limit,
        "before_at": after[0] if after else None,
        "before_id": after[1] if after else None,
    }
    attempts = [HistoryAttempt.model_validate(row) for row in db.query(principal, ROWS, params)]
    keys = [instant_cursor(a.started_at, a.attempt_id) for a in attempts]
    page = AttemptHistory(
        user_id=principal.user_id, attempts=attempts, next_cursor=next_cursor(keys, limit)
    )
    return page.model_dump_json()


def normal(document: str | bytes) -> str:
    """The JSON written compactly: only spacing is lost (an int stays an int)."""
    return json.dumps(json.loads(document), ensure_ascii=False, separators=(",", ":"))


def principal_of(user: User) -> Principal:
    return Principal(user.user_id, user.org_id, Role(user.role))


@pytest.mark.parametrize("limit", [50, 7, 200])
@pytest.mark.parametrize("filtered", [False, True], ids=["all", "scenario"])
def test_every_page_is_the_document_the_model_rendered(
    db: Database, world: World, limit: int, filtered: bool
) -> None:
    principal = principal_of(world.users["trainee_a1"])
    service = TrackingService(db, TenantCache(), Settings())
    scenario = world.scenarios["second"] if filtered else None
    cursor, pages, seen = None, 0, 0
    while True:
        page = service.history(principal, "me", scenario, limit, cursor)
        assert isinstance(page, HistoryPage)
        expected = as_before(db, principal, scenario, limit, cursor)
        assert normal(page.body) == normal(expected)
        # The body is a document of the model the route declares, as the contract says.
        CONTRACT.validate(json.loads(page.body))
        assert AttemptHistory.model_validate_json(page.body).next_cursor == page.next_cursor
        pages += 1
        seen += page.attempt_count
        cursor = page.next_cursor
        if cursor is None:
            break
    total = 20 if filtered else 63  # every completed attempt, once
    assert seen == total
    assert pages == total // limit + 1  # a full last page is followed by an empty one


def test_the_scalars_are_written_as_the_model_writes_them(db: Database, world: World) -> None:
    principal = principal_of(world.users["trainee_a1"])
    page = TrackingService(db, TenantCache(), Settings()).history(principal, "me", None, 200, None)
    before = json.loads(as_before(db, principal, None, 200, None))
    after = json.loads(page.body)
    for old, new in zip(before["attempts"], after["attempts"], strict=True):
        assert list(new) == list(old)  # the members, in the model's order
        for name in ("started_at", "ended_at", "score"):
            assert (type(new[name]), new[name]) == (type(old[name]), old[name])


def test_an_empty_history_and_an_unknown_member(db: Database, world: World) -> None:
    service = TrackingService(db, TenantCache(), Settings())
    empty = service.history(principal_of(world.users["trainee_a2"]), "me", None, 50, None)
    assert normal(empty.body) == normal(
        as_before(db, principal_of(world.users["trainee_a2"]), None, 50, None)
    )
    assert json.loads(empty.body)["attempts"] == []
    assert empty.attempt_count == 0
    assert empty.next_cursor is None


def test_a_document_that_is_not_an_object_is_refused(
    database: MigratedDatabase, db: Database, world: World
) -> None:
    trainee = world.users["trainee_a3"]
    principal = principal_of(trainee)
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        insert(conn, trainee, world.scenarios["a"], started_at=T0, kpis=Jsonb([1, 2]))
    service = TrackingService(db, TenantCache(), Settings())
    with pytest.raises(psycopg.Error) as refused:
        service.history(principal, "me", None, 50, None)
    assert refused.value.sqlstate == "PDOCS"
    # As the model refused it before.
    with pytest.raises(ValueError, match="kpis"):
        as_before(db, principal, None, 50, None)
