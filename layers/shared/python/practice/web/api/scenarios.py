"""The scenario catalog over HTTP: browse and read (everyone), save, rate and
note (each caller for themselves), author (admins and managers of the org;
built-in scenarios are read-only), and a member's progress across scenarios
(the tracking visibility rule)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field
from starlette.responses import Response

from practice.core.keyset import NUMBER_CURSOR
from practice.scenarios.models import (
    Difficulty,
    Engagement,
    MemberProgress,
    NewScenario,
    Notes,
    Rating,
    Scenario,
    ScenarioChanges,
    ScenarioPage,
    Sort,
)
from practice.scenarios.service import ScenarioService
from practice.web.api.tracking import UserId
from practice.web.params import In, RouteParams
from practice.web.routes import LOCATION, Call, Reply, Router

router = Router()

ScenarioId = Annotated[UUID, In("path", "scenarioId")]


class CatalogParams(RouteParams):
    sort: Annotated[Sort, In("query", "sort")] = "newest"
    difficulty: Annotated[Difficulty | None, In("query", "difficulty")] = None
    category: Annotated[
        str | None, In("query", "category"), Field(min_length=1, max_length=200)
    ] = None
    saved: Annotated[
        bool | None, In("query", "saved"), Field(description="only those the caller saved (true)")
    ] = None
    limit: Annotated[int, In("query", "limit"), Field(ge=1, le=100)] = 20
    cursor: Annotated[
        str | None,
        In("query", "cursor"),
        Field(pattern=NUMBER_CURSOR, description="next_cursor of the previous page, same sort"),
    ] = None


class OfScenario(RouteParams):
    scenario_id: ScenarioId


class ProgressParams(RouteParams):
    user_id: UserId
    saved: Annotated[
        bool | None, In("query", "saved"), Field(description="only saved (true) or unsaved")
    ] = None


@router.get("/scenarios", params=CatalogParams, replies=[Reply(200, ScenarioPage)])
async def browse_scenarios(call: Call[CatalogParams, None], scenarios: ScenarioService) -> Response:
    """The active scenarios the caller's org can use (its own and built-ins) with the
    org's figures and the caller's progress. trending: completions over the last 7
    UTC days; most_saved, top_rated (unrated last), most_used, newest. Keyset pages."""
    p = call.params
    page = scenarios.browse(
        call.principal,
        p.sort,
        difficulty=p.difficulty,
        category=p.category,
        saved=p.saved,
        limit=p.limit,
        cursor=p.cursor,
    )
    return call.reply(200, page)


@router.post(
    "/scenarios",
    body=NewScenario,
    replies=[Reply(201, Scenario, [LOCATION], "created")],
    errors=(403,),
)
async def create_scenario(call: Call[None, NewScenario], scenarios: ScenarioService) -> Response:
    """A scenario of the caller's org (admins and managers)."""
    created = scenarios.create(call.principal, call.body)
    return call.reply(201, created, {"Location": f"/scenarios/{created.id}"})


@router.get(
    "/scenarios/{scenarioId}", params=OfScenario, replies=[Reply(200, Scenario)], errors=(404,)
)
async def get_scenario(call: Call[OfScenario, None], scenarios: ScenarioService) -> Response:
    """The scenario's content, its org's figures and the caller's progress."""
    return call.reply(200, scenarios.get(call.principal, call.params.scenario_id))


@router.patch(
    "/scenarios/{scenarioId}",
    params=OfScenario,
    body=ScenarioChanges,
    replies=[Reply(200, Scenario)],
    errors=(403, 404),
)
async def edit_scenario(
    call: Call[OfScenario, ScenarioChanges], scenarios: ScenarioService
) -> Response:
    """Change the fields sent (admins and managers, the org's own scenarios)."""
    return call.reply(200, scenarios.update(call.principal, call.params.scenario_id, call.body))


@router.delete(
    "/scenarios/{scenarioId}",
    params=OfScenario,
    replies=[Reply(204, None, description="deactivated")],
    errors=(403, 404),
)
async def deactivate_scenario(call: Call[OfScenario, None], scenarios: ScenarioService) -> Response:
    """Take the scenario out of the catalog (admins and managers); its history stays."""
    scenarios.deactivate(call.principal, call.params.scenario_id)
    return call.reply(204)


def _engagement_route(
    name: str, method: str, suffix: str, action: str, doc: str, *, body: type | None = None
) -> None:
    # The five engagement routes differ only in their action and body.
    async def endpoint(call: Call[OfScenario, object], scenarios: ScenarioService) -> Response:
        extra = {}
        if isinstance(call.body, Rating):
            extra["rating"] = call.body.rating
        elif isinstance(call.body, Notes):
            extra["notes"] = call.body.notes
        engaged = scenarios.engage(call.principal, call.params.scenario_id, action, **extra)
        return call.reply(200, engaged)

    endpoint.__name__ = name
    endpoint.__doc__ = doc
    router.route(
        method,
        f"/scenarios/{{scenarioId}}/{suffix}",
        params=OfScenario,
        body=body,
        replies=[Reply(200, Engagement)],
        errors=(404,),
    )(endpoint)


_engagement_route(
    "save_scenario",
    "PUT",
    "save",
    "save",
    "Save the scenario; saving twice counts once (amount_saved_count).",
)
_engagement_route("unsave_scenario", "DELETE", "save", "unsave", "Unsave the scenario; idempotent.")
_engagement_route(
    "rate_scenario",
    "PUT",
    "rating",
    "rate",
    "Rate the scenario 1..5; a new rating replaces the caller's.",
    body=Rating,
)
_engagement_route(
    "unrate_scenario", "DELETE", "rating", "unrate", "Withdraw the caller's rating; idempotent."
)
_engagement_route(
    "note_scenario",
    "PUT",
    "notes",
    "notes",
    "The caller's private notes on the scenario (null clears them).",
    body=Notes,
)


@router.get(
    "/users/{userId}/scenario-progress",
    params=ProgressParams,
    replies=[Reply(200, MemberProgress)],
    errors=(404,),
)
async def member_scenario_progress(
    call: Call[ProgressParams, None], scenarios: ScenarioService
) -> Response:
    """A member's progress across scenarios (themselves, a manager's team, an admin's org)."""
    p = call.params
    return call.reply(200, scenarios.member_progress(call.principal, p.user_id, p.saved))
