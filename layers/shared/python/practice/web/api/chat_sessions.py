"""Chat sessions and their scenario progress over HTTP. The owner creates and
writes; a manager reads their team's sessions, an admin the org's; anyone else
finds nothing (404).

The progress carries a version, sent as its ETag: a PUT or DELETE with
``If-Match`` is made only on that version (412 with the current one
otherwise), so two devices cannot silently overwrite each other; without
``If-Match`` the write is unconditional, as seed 003's clients expect.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field
from starlette.responses import Response

from practice.chat_progress.models import (
    ChatSession,
    ChatSessions,
    NewSession,
    ProgressState,
    PutProgress,
)
from practice.chat_progress.service import ChatProgressService
from practice.core.keyset import INSTANT_CURSOR
from practice.web.etags import IF_MATCH_PATTERN, etag, version_from_if_match
from practice.web.params import In, RouteParams
from practice.web.routes import ETAG, LOCATION, Call, Reply, Router

router = Router()

SessionId = Annotated[UUID, In("path", "sessionId")]


class ListParams(RouteParams):
    limit: Annotated[int, In("query", "limit"), Field(ge=1, le=100)] = 20
    cursor: Annotated[
        str | None,
        In("query", "cursor"),
        Field(pattern=INSTANT_CURSOR, description="next_cursor of the previous page"),
    ] = None


class OfSession(RouteParams):
    session_id: SessionId


class WriteParams(RouteParams):
    session_id: SessionId
    if_match: Annotated[
        str | None,
        In("header", "If-Match"),
        Field(pattern=IF_MATCH_PATTERN, description='the progress version it builds on, as "3"'),
    ] = None


@router.post(
    "/chat-sessions",
    body=NewSession,
    replies=[Reply(201, ChatSession, [LOCATION, ETAG], "created")],
)
async def create_chat_session(
    call: Call[None, NewSession], chat_sessions: ChatProgressService
) -> Response:
    """A new chat session of the caller."""
    session = chat_sessions.create(call.principal, call.body)
    headers = {"Location": f"/chat-sessions/{session.id}", "ETag": etag(session.progress_version)}
    return call.reply(201, session, headers)


@router.get("/chat-sessions", params=ListParams, replies=[Reply(200, ChatSessions)])
async def list_chat_sessions(
    call: Call[ListParams, None], chat_sessions: ChatProgressService
) -> Response:
    """The caller's own sessions, newest first, a keyset page at a time."""
    p = call.params
    return call.reply(200, chat_sessions.list(call.principal, p.limit, p.cursor))


@router.get(
    "/chat-sessions/{sessionId}",
    params=OfSession,
    replies=[Reply(200, ChatSession, [ETAG])],
    errors=(404,),
)
async def get_chat_session(
    call: Call[OfSession, None], chat_sessions: ChatProgressService
) -> Response:
    """A session and where its scenario stands (its owner, their manager, an admin)."""
    session = chat_sessions.get(call.principal, call.params.session_id)
    return call.reply(200, session, {"ETag": etag(session.progress_version)})


@router.get(
    "/chat-sessions/{sessionId}/scenario-progress",
    params=OfSession,
    replies=[Reply(200, ProgressState, [ETAG])],
    errors=(404,),
)
async def get_scenario_progress(
    call: Call[OfSession, None], chat_sessions: ChatProgressService
) -> Response:
    """The session's scenario progress, its timestamps and its version (ETag)."""
    state = chat_sessions.progress(call.principal, call.params.session_id)
    return call.reply(200, state, {"ETag": etag(state.version)})


@router.put(
    "/chat-sessions/{sessionId}/scenario-progress",
    params=WriteParams,
    body=PutProgress,
    replies=[Reply(200, ProgressState, [ETAG], "written")],
    errors=(403, 404, 409, 412),
)
async def put_scenario_progress(
    call: Call[WriteParams, PutProgress], chat_sessions: ChatProgressService
) -> Response:
    """Write the progress (the owner): scenario_started_at set by a scenario's first
    write, scenario_completed_at when completed; a new scenario clears it. 409 when
    the document contradicts its scenario (a step or action that does not exist)."""
    expected = version_from_if_match(call.params.if_match)
    state = chat_sessions.put(call.principal, call.params.session_id, call.body, expected)
    return call.reply(200, state, {"ETag": etag(state.version)})


@router.delete(
    "/chat-sessions/{sessionId}/scenario-progress",
    params=WriteParams,
    replies=[Reply(204, None, [ETAG], "cleared (or already clear)")],
    errors=(403, 404, 412),
)
async def clear_scenario_progress(
    call: Call[WriteParams, None], chat_sessions: ChatProgressService
) -> Response:
    """Clear the progress (the owner); idempotent."""
    expected = version_from_if_match(call.params.if_match)
    state = chat_sessions.clear(call.principal, call.params.session_id, expected)
    return call.reply(204, None, {"ETag": etag(state.version)})
