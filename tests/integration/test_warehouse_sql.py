"""practice_jsonb_int (0001, PL/pgSQL since 0017): a KPI value the completion
trigger reads as an integer, or NULL, and never an error that would make
completing an attempt fail."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dev.postgres import MigratedDatabase


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"k": 6000}, 6000),
        ({"k": "6000"}, 6000),
        ({"k": " -42 "}, -42),
        ({"k": 12.5}, 13),  # rounded half away from zero, as numeric rounds
        ({"k": -2.5}, -3),
        ({"k": 2147483647}, 2147483647),
        ({"k": -2147483648}, -2147483648),
        ({"k": 2147483648}, None),  # out of integer range
        ({"k": 123456789012345}, None),  # more than 12 digits
        ({"k": "1e5"}, None),
        ({"k": "12 ms"}, None),
        ({"k": ""}, None),
        ({"k": True}, None),
        ({"k": None}, None),
        ({"k": [1]}, None),
        ({"k": {"v": 1}}, None),
        ({"other": 1}, None),
        ([1, 2], None),
        (None, None),
    ],
)
def test_a_kpi_value_is_an_integer_or_null_never_an_error(
    database: MigratedDatabase, document: object, expected: int | None
) -> None:
    with psycopg.connect(database.admin_url) as conn:
        value = None if document is None else Jsonb(document)
        (found,) = conn.execute("select practice_jsonb_int(%s::jsonb, 'k')", [value]).fetchone()
    assert found == expected
