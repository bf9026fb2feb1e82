"""The scenario catalog's domain: browse, read, save, rate, note, and author.

Every statement is scoped by the caller's org in the SQL (``p_org_id``) and by
row-level security. The engagement counters are the database triggers'
(sql/migrations/0003, 0022): a save here is one upsert of the caller's own
progress row, and the counters move by exactly the change it made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from practice.core.db import Database
from practice.core.errors import Forbidden, Invalid, NotFound
from practice.core.identity import Principal, Role
from practice.core.keyset import next_cursor, number_cursor, read_number
from practice.scenarios.models import (
    Engagement,
    MemberProgress,
    MemberScenarioProgress,
    NewScenario,
    Scenario,
    ScenarioChanges,
    ScenarioPage,
    Sort,
)
from practice.tracking.service import member_of, query_member

CATALOG = (
    "select * from scenario_catalog(%(org_id)s, %(user_id)s, %(sort)s, %(difficulty)s,"
    " %(category)s, %(saved)s, %(limit)s, %(after_value)s, %(after_id)s, %(scenario_id)s)"
)
ENGAGE = (
    "select * from scenario_engage(%(org_id)s, %(user_id)s, %(scenario_id)s, %(action)s,"
    " %(rating)s, %(notes)s)"
)
MEMBER_PROGRESS = "select * from user_scenario_progress_of(%(org_id)s, %(member)s, %(saved)s)"
# Whose a scenario the caller sees is (NULL: built-in), to tell read-only from unknown.
_OWNER = (
    "select org_id from scenarios where id = %(id)s and (org_id is null or org_id = %(org_id)s)"
)

_FIGURES = (
    "amount_saved_count",
    "total_times_used",
    "total_attempts",
    "average_rating",
    "ratings_count",
    "completion_rate",
    "average_time_spent",
    "completions_7d",
)
_PROGRESS = (
    "is_saved",
    "saved_at",
    "user_rating",
    "user_notes",
    "times_completed",
    "times_attempted",
    "last_completed_at",
)
# Columns a scenario always has: a PATCH may change them, never clear them.
_REQUIRED = ("title", "difficulty", "visibility", "is_active")
_JSON_COLUMNS = {"learning_objectives", "persona", "comfort_indicators"}


def _scenario(row: dict[str, Any]) -> Scenario:
    return Scenario.model_validate(
        row
        | {
            "built_in": row["org_id"] is None,
            "metadata": {k: row[k] for k in _FIGURES},
            "progress": {k: row[k] for k in _PROGRESS},
        }
    )


def _column_value(name: str, value: Any) -> Any:
    return Jsonb(value) if name in _JSON_COLUMNS and value is not None else value


@dataclass
class ScenarioService:
    """The catalog, bound to the container's database."""

    db: Database

    def _catalog(self, principal: Principal, **values: Any) -> list[dict[str, Any]]:
        params = {
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "sort": "newest",
            "difficulty": None,
            "category": None,
            "saved": None,
            "limit": 1,
            "after_value": None,
            "after_id": None,
            "scenario_id": None,
        } | values
        return self.db.query(principal, CATALOG, params)

    def browse(
        self,
        principal: Principal,
        sort: Sort,
        *,
        difficulty: str | None = None,
        category: str | None = None,
        saved: bool | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ScenarioPage:
        """A page of the active scenarios the caller's org can use, in ``sort``'s order."""
        after = read_number(cursor)
        rows = self._catalog(
            principal,
            sort=sort,
            difficulty=difficulty,
            category=category,
            saved=saved,
            limit=limit,
            after_value=after[0] if after else None,
            after_id=after[1] if after else None,
        )
        positions = [number_cursor(row["sort_value"], row["id"]) for row in rows]
        return ScenarioPage(
            sort=sort,
            scenarios=[_scenario(row) for row in rows],
            next_cursor=next_cursor(positions, limit),
        )

    def get(self, principal: Principal, scenario_id: UUID) -> Scenario:
        """One scenario with its figures and the caller's progress (a deactivated one
        of the org only for its coaches)."""
        rows = self._catalog(principal, scenario_id=scenario_id)
        if not rows:
            raise NotFound(f"scenario {scenario_id} not found")
        return _scenario(rows[0])

    # -- engagement --------------------------------------------------------------

    def engage(
        self,
        principal: Principal,
        scenario_id: UUID,
        action: str,
        *,
        rating: int | None = None,
        notes: str | None = None,
    ) -> Engagement:
        """Save, unsave, rate, unrate or note a scenario on the caller's own progress;
        repeating one changes nothing (and moves no counter)."""
        params = {
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "scenario_id": scenario_id,
            "action": action,
            "rating": rating,
            "notes": notes,
        }
        rows = self.db.query(principal, ENGAGE, params)
        if not rows:
            raise NotFound(f"scenario {scenario_id} not found")
        return Engagement.model_validate(rows[0])

    def member_progress(
        self, principal: Principal, user_id: str, saved: bool | None
    ) -> MemberProgress:
        """A member's progress across scenarios (the tracking visibility rule)."""
        member = member_of(principal, user_id)
        rows = query_member(self.db, principal, MEMBER_PROGRESS, member, saved=saved)
        return MemberProgress(
            user_id=member, scenarios=[MemberScenarioProgress.model_validate(r) for r in rows]
        )

    # -- authoring ---------------------------------------------------------------

    def create(self, principal: Principal, body: NewScenario) -> Scenario:
        """A new scenario of the caller's org (admins and managers)."""
        principal.require(Role.ADMIN, Role.MANAGER)
        fields = body.model_dump(exclude_none=True)
        fields = {"visibility": "org", **fields}
        columns = ["org_id", "created_by_user_id", *fields]
        values = [principal.org_id, principal.user_id] + [
            _column_value(name, value) for name, value in fields.items()
        ]
        statement = sql.SQL("insert into scenarios ({}) values ({}) returning id").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        (row,) = self.db.query(principal, statement.as_string(), values, idempotent=False)
        return self.get(principal, row["id"])

    def _writable(self, principal: Principal, scenario_id: UUID) -> None:
        principal.require(Role.ADMIN, Role.MANAGER)
        rows = self.db.query(principal, _OWNER, {"id": scenario_id, "org_id": principal.org_id})
        if not rows:
            raise NotFound(f"scenario {scenario_id} not found")
        if rows[0]["org_id"] is None:
            raise Forbidden("built-in scenarios are read-only")

    def update(self, principal: Principal, scenario_id: UUID, changes: ScenarioChanges) -> Scenario:
        """Change the fields sent of a scenario of the caller's org (admins and managers)."""
        self._writable(principal, scenario_id)
        fields = changes.model_dump(exclude_unset=True)
        for name in _REQUIRED:
            if name in fields and fields[name] is None:
                raise Invalid(f"{name} cannot be cleared", field=f"body.{name}")
        if fields:
            self._set(principal, scenario_id, fields)
        return self.get(principal, scenario_id)

    def deactivate(self, principal: Principal, scenario_id: UUID) -> None:
        """Take a scenario of the caller's org out of the catalog (admins and managers);
        its attempts, progress and figures stay."""
        self._writable(principal, scenario_id)
        self._set(principal, scenario_id, {"is_active": False})

    def _set(self, principal: Principal, scenario_id: UUID, fields: dict[str, Any]) -> None:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name))
            for name in fields
        )
        statement = sql.SQL(
            "update scenarios set {} where id = %(scenario_id)s and org_id = %(org_id)s"
        ).format(assignments)
        params = {name: _column_value(name, value) for name, value in fields.items()}
        params |= {"scenario_id": scenario_id, "org_id": principal.org_id}
        self.db.query(principal, statement.as_string(), params, idempotent=False)
