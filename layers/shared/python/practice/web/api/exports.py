"""CSV exports over HTTP: ``POST /exports``, ``GET /exports/{exportId}``,
``GET /exports``. The file is written by the exports worker (``practice.exports.worker``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from psycopg import Connection
from pydantic import Field
from starlette.responses import Response

from practice.exports.models import MAX_PAGE, Export, ExportPage, RequestExport
from practice.exports.service import CURSOR_PATTERN, ExportService
from practice.web.params import In, RouteParams
from practice.web.routes import LOCATION, Call, Reply, Router

router = Router()


class OfExport(RouteParams):
    export_id: Annotated[UUID, In("path", "exportId")]


class PageParams(RouteParams):
    limit: Annotated[
        int, In("query", "limit"), Field(ge=1, le=MAX_PAGE, description="exports per page")
    ] = 20
    cursor: Annotated[
        str | None,
        In("query", "cursor"),
        Field(
            pattern=CURSOR_PATTERN,
            description="the `next` of the page before (where the page starts)",
        ),
    ] = None


@router.post(
    "/exports",
    body=RequestExport,
    replies=[
        Reply(202, Export, [LOCATION], "accepted: the worker writes the file; poll the Location")
    ],
    errors=(503,),
    idempotent=True,
)
async def request_export(call: Call[None, RequestExport], exports: ExportService) -> Response:
    """Ask for a CSV export of the attempts the caller may see, in a period of at
    most a year (a setting); the answer is the pending export."""

    def respond(conn: Connection | None) -> Response:
        export = exports.request(call.principal, call.body, conn)
        return call.reply(202, export, {"Location": f"/exports/{export.id}"})

    return await call.once(respond)


@router.get("/exports/{exportId}", params=OfExport, replies=[Reply(200, Export)], errors=(404,))
async def get_export(call: Call[OfExport, None], exports: ExportService) -> Response:
    """The export's status, counts and times; once it succeeded, a download URL
    minted for this answer (short-lived; ask again for another). After the
    bucket's retention the export is `expired` and has no URL."""
    return call.reply(200, exports.get(call.principal, call.params.export_id))


@router.get("/exports", params=PageParams, replies=[Reply(200, ExportPage)])
async def list_exports(call: Call[PageParams, None], exports: ExportService) -> Response:
    """The caller's exports (an admin's: the organization's), newest first."""
    page = exports.page(call.principal, call.params.limit, call.params.cursor)
    return call.reply(200, page)


__all__ = ["router"]
