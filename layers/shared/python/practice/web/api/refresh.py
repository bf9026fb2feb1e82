"""The warehouse refresh over HTTP: ``POST /reports/refresh`` (admins, on demand)
and ``GET /reports/refresh/runs/{runId}``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from starlette.responses import Response

from practice.reporting.models import RefreshRequest, RefreshRun
from practice.reporting.refresh import RefreshService
from practice.web.params import In, RouteParams
from practice.web.routes import LOCATION, Call, Reply, Router

router = Router()


class OfRun(RouteParams):
    run_id: Annotated[int, In("path", "runId"), Field(ge=1, le=2_147_483_647)]


@router.post(
    "/reports/refresh",
    body=RefreshRequest,
    replies=[
        Reply(200, RefreshRun, [LOCATION], "the run this request worked (succeeded or failed)"),
        Reply(202, RefreshRun, [LOCATION], "skipped: another run was working (joined_run_id)"),
    ],
)
async def refresh_reports(call: Call[None, RefreshRequest], refresh: RefreshService) -> Response:
    """Fold the changes logged since the last run into the reporting summaries
    (``full``: recompute everything). When a run is already working this one
    does not wait: it answers 202 naming the run it joined (Location)."""
    run = refresh.run(call.principal, full=call.body.full)
    if run.status == "skipped" and run.joined_run_id is not None:
        location = f"/reports/refresh/runs/{run.joined_run_id}"
        return call.reply(202, run, {"Location": location})
    return call.reply(200, run, {"Location": f"/reports/refresh/runs/{run.id}"})


@router.get(
    "/reports/refresh/runs/{runId}",
    params=OfRun,
    replies=[Reply(200, RefreshRun)],
    errors=(404,),
)
async def get_refresh_run(call: Call[OfRun, None], refresh: RefreshService) -> Response:
    """A refresh run (admins); one still working answers status ``running``."""
    return call.reply(200, refresh.get(call.principal, call.params.run_id))
