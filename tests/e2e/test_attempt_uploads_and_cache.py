"""Recording uploads through moto's S3 server over real HTTP, and the state cache
across two containers."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from practice.attempts.models import ConfirmUpload, Draft, RequestUpload
from practice.attempts.recordings import RecordingService
from practice.attempts.service import AttemptService
from practice.core.cache import TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Invalid
from practice.core.identity import Principal, Role
from tests.conftest import MigratedDatabase
from tests.e2e.test_attempts import attempt_event, start, start_request
from tests.support import World

AUDIO = b"RIFF" + b"\x00" * 2044  # 2 KiB that claims to be a WAV


def _post(presigned: dict[str, Any], content: bytes, content_type: str) -> httpx.Response:
    fields = dict(presigned["fields"]) | {"Content-Type": content_type}
    files = {"file": ("recording.wav", content, content_type)}
    return httpx.post(presigned["url"], data=fields, files=files, timeout=10)


def _recording_path(database: MigratedDatabase, attempt_id: str) -> str | None:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "select recording_path from scenario_attempts where id = %s", [attempt_id]
        ).fetchone()[0]


def test_a_presigned_post_uploads_to_s3_and_confirm_records_the_path(
    call, world: World, database: MigratedDatabase, attempts_app
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    request = {"content_type": "audio/wav", "size_bytes": len(AUDIO)}
    requested_at = datetime.now(UTC)
    reply = call(attempt_event("POST", attempt["id"], trainee, "upload", request))
    assert reply.status == 201
    presigned = reply.body
    prefix = f"recordings/{trainee.org_id}/{attempt['id']}/"
    assert presigned["key"].startswith(prefix)

    # The signed policy carries the size range, the content type and the key prefix.
    policy = json.loads(base64.b64decode(presigned["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, presigned["max_bytes"]] in conditions
    assert {"Content-Type": "audio/wav"} in conditions
    assert ["starts-with", "$key", prefix] in conditions
    # The policy lapses when the answer says, the configured lifetime from now
    # (S3 writes whole seconds).
    expires_at = datetime.fromisoformat(presigned["expires_at"])
    assert abs(datetime.fromisoformat(policy["expiration"]) - expires_at) < timedelta(seconds=2)
    lifetime = timedelta(seconds=attempts_app.settings.upload_url_expiry_seconds)
    assert timedelta(0) <= expires_at - (requested_at + lifetime) < timedelta(seconds=5)

    uploaded = _post(presigned, AUDIO, "audio/wav")
    assert uploaded.status_code in (200, 204), uploaded.text

    confirm = {"step": "confirm", "key": presigned["key"]}
    reply = call(attempt_event("POST", attempt["id"], trainee, "upload", confirm))
    assert reply.status == 200, reply.body
    assert reply.body["recording_path"] == presigned["key"]
    assert reply.body["size_bytes"] == len(AUDIO)
    assert _recording_path(database, attempt["id"]) == presigned["key"]


def test_an_upload_request_outside_the_limits_is_refused_before_signing(call, world: World) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    reply = call(
        attempt_event(
            "POST", attempt["id"], trainee, "upload", {"content_type": "text/html", "size_bytes": 5}
        )
    )
    assert (reply.status, reply.problem["errors"][0]["field"]) == (422, "body.content_type")
    reply = call(
        attempt_event(
            "POST",
            attempt["id"],
            trainee,
            "upload",
            {"content_type": "audio/wav", "size_bytes": 10**12},
        )
    )
    assert (reply.status, reply.problem["errors"][0]["field"]) == (422, "body.size_bytes")


@pytest.fixture
def strict_uploads(attempts_app) -> RecordingService:
    """The recording service with a 1 KiB recording limit, sharing the function's
    pool, so an oversized file is cheap to make."""
    return RecordingService(attempts_app.db, TenantCache(), attempts_app.settings, max_bytes=1024)


def attempts_of(recordings: RecordingService) -> AttemptService:
    """An attempt service over the same pool and settings."""
    return AttemptService(recordings.db, recordings.cache, recordings.settings)


@pytest.mark.parametrize(
    ("content", "content_type", "reason"),
    [
        (AUDIO, "audio/wav", "exceeds the limit"),
        (b"x" * 100, "text/plain", "not an accepted audio type"),
        (b"", "audio/wav", "empty"),
    ],
)
def test_confirm_refuses_what_moto_let_through_and_records_nothing(
    strict_uploads: RecordingService,
    world: World,
    database: MigratedDatabase,
    content: bytes,
    content_type: str,
    reason: str,
) -> None:
    trainee = world.users["trainee_a1"]
    principal = Principal(trainee.user_id, trainee.org_id, Role.TRAINEE)
    attempt = {"id": str(attempts_of(strict_uploads).start(principal, start_request(world)).id)}
    presigned = strict_uploads.request_upload(
        principal, uuid.UUID(attempt["id"]), RequestUpload(content_type="audio/wav", size_bytes=10)
    ).model_dump(mode="json")
    # moto does not enforce the POST policy: the bad file lands anyway.
    assert _post(presigned, content, content_type).status_code in (200, 204)
    with pytest.raises(Invalid, match=reason):
        strict_uploads.confirm_upload(
            principal, uuid.UUID(attempt["id"]), ConfirmUpload(step="confirm", key=presigned["key"])
        )
    assert _recording_path(database, attempt["id"]) is None
    listing = strict_uploads.s3.list_objects_v2(
        Bucket=strict_uploads.settings.uploads_bucket, Prefix=presigned["key"]
    )
    assert listing.get("KeyCount", 0) == 0, "the refused object was left behind"


def test_confirm_of_a_missing_object_or_a_foreign_key_records_nothing(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    missing = f"recordings/{trainee.org_id}/{attempt['id']}/{uuid.uuid4()}.wav"
    reply = call(
        attempt_event("POST", attempt["id"], trainee, "upload", {"step": "confirm", "key": missing})
    )
    assert reply.status == 404
    assert "nothing was uploaded" in reply.problem["detail"]
    other = start(call, trainee, world.scenarios["a"])
    foreign = f"recordings/{trainee.org_id}/{other['id']}/{uuid.uuid4()}.wav"
    reply = call(
        attempt_event("POST", attempt["id"], trainee, "upload", {"step": "confirm", "key": foreign})
    )
    # Shaped like an issued key, but for another attempt: none of this one's.
    assert (reply.status, reply.problem["errors"][0]["field"]) == (404, "body.key")
    assert _recording_path(database, attempt["id"]) is None


# -- cache --------------------------------------------------------------------


def test_a_save_is_seen_by_the_next_state_read_and_refreshes_cached_info(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    assert call(attempt_event("GET", attempt["id"], trainee, "info")).body["status"] == (
        "in_progress"
    )
    saved = call(
        attempt_event(
            "PATCH", attempt["id"], trainee, "save", {"answers": {"a": 1}, "expected_version": 1}
        )
    )
    assert saved.status == 200
    after = call(attempt_event("GET", attempt["id"], trainee, "state")).body
    assert (after["version"], after["answers"]) == (2, {"a": 1})
    assert call(attempt_event("POST", attempt["id"], trainee, "submit", {})).status == 200
    info = call(attempt_event("GET", attempt["id"], trainee, "info")).body
    assert info["status"] == "completed"  # the submit dropped this container's copy


def test_another_container_never_serves_a_stale_version_or_a_wrong_304(
    database: MigratedDatabase, world: World
) -> None:
    settings = Settings(database_url=database.app_url)
    one, two = (AttemptService(Database(settings), TenantCache(), settings) for _ in range(2))
    for container in (one, two):
        container.db.open()
    try:
        trainee = world.users["trainee_a2"]
        principal = Principal(trainee.user_id, trainee.org_id, Role.TRAINEE)
        attempt_id = one.start(principal, start_request(world)).id
        assert two.state(principal, attempt_id).version == 1
        one.save(principal, attempt_id, Draft(answers={"x": 1}, expected_version=1))
        seen_by_two = two.state(principal, attempt_id)
        assert (seen_by_two.version, seen_by_two.answers) == (2, {"x": 1})
        assert two.cache.stats()["size"] == 0  # nothing versioned was kept
    finally:
        for container in (one, two):
            container.db.close()


def test_cached_info_is_never_served_to_a_viewer_who_cannot_see_it(call, world: World) -> None:
    # Info, not state: state is never cached, so a read of it could not show a
    # cache keyed too coarsely.
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    assert call(attempt_event("GET", attempt["id"], trainee, "info")).status == 200
    teammate = world.users["trainee_a2"]
    assert call(attempt_event("GET", attempt["id"], teammate, "info")).status == 404
