"""The exports' SQL: the export's statement is inlined into the query that
COPY streams (no function scan materialising its rows), and formula cells are
neutralised while other text and numbers pass unchanged."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import MigratedDatabase
from tests.support import World


def _as(conn: psycopg.Connection, world: World, who: str) -> None:
    user = world.users[who]
    conn.execute("select practice_enter(%s, %s, %s, '5s')", [user.org_id, user.user_id, user.role])


def test_the_export_statement_is_inlined(database: MigratedDatabase, world: World) -> None:
    with psycopg.connect(database.app_url) as conn:
        _as(conn, world, "manager_a")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "explain select * from export_attempt_rows('2025-01-01', '2025-12-31',"
                " null, null, null)"
            )
        )
    assert "Function Scan" not in plan, plan
    assert "fact_scenario_attempts" in plan


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\nx", "'\nx"),
        ("a=1", "a=1"),
        ('Ann, "Q"', 'Ann, "Q"'),
        ("", ""),
        (None, None),
    ],
)
def test_formula_cells_are_neutralised(
    database: MigratedDatabase, world: World, value: str | None, cell: str | None
) -> None:
    with psycopg.connect(database.app_url) as conn:
        _as(conn, world, "trainee_a1")
        assert conn.execute("select practice_csv_text(%s)", [value]).fetchone()[0] == cell
