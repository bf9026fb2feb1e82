"""Confirming a recording: refusals, repeats and races. The attempt is judged on
its locked row in the transaction that records the path (attempt_record_recording),
so neither a second confirm nor an abandon can slip between check and write, and
an object that can never be recorded does not stay in the bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import boto3
import httpx
import psycopg

from tests.conftest import MigratedDatabase
from tests.e2e.test_attempts import attempt_event, start
from tests.support import World

AUDIO = b"RIFF" + b"\x00" * 1020


def _uploaded(call, trainee, attempt_id: str) -> str:
    """Request an upload, put the object, and answer its key (not yet confirmed)."""
    request = {"content_type": "audio/wav", "size_bytes": len(AUDIO)}
    presigned = call(attempt_event("POST", attempt_id, trainee, "upload", request)).body
    fields = dict(presigned["fields"]) | {"Content-Type": "audio/wav"}
    files = {"file": ("r.wav", AUDIO, "audio/wav")}
    posted = httpx.post(presigned["url"], data=fields, files=files, timeout=10)
    assert posted.status_code in (200, 204), posted.text
    return presigned["key"]


def _confirm(call, trainee, attempt_id: str, key: str):
    body = {"step": "confirm", "key": key}
    return call(attempt_event("POST", attempt_id, trainee, "upload", body))


def _row(database: MigratedDatabase, attempt_id: str) -> tuple[Any, ...]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(
            "select status, version, recording_path from scenario_attempts where id = %s",
            [attempt_id],
        ).fetchone()


def _race(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions at once (released together by a barrier); their answers in order."""
    barrier = threading.Barrier(len(actions))
    answers: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = actions[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def _stored(attempts_app, key: str) -> bool:
    settings = attempts_app.settings
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
    listing = s3.list_objects_v2(Bucket=settings.uploads_bucket, Prefix=key)
    return listing.get("KeyCount", 0) > 0


def test_confirming_the_same_recording_again_is_a_repeat_that_writes_nothing(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = _uploaded(call, trainee, attempt["id"])
    first = _confirm(call, trainee, attempt["id"], key)
    assert first.status == 200, first.body
    after_first = _row(database, attempt["id"])
    again = _confirm(call, trainee, attempt["id"], key)
    assert again.status == 200
    assert again.body["version"] == first.body["version"]
    # No version bump: the trainee's next autosave on the version they hold still lands.
    assert _row(database, attempt["id"]) == after_first
    save = {"answers": {"q": "a"}, "expected_version": after_first[1]}
    assert call(attempt_event("PATCH", attempt["id"], trainee, "save", save)).status == 200


def test_a_second_recording_is_refused_and_its_object_deleted(
    call, world: World, database: MigratedDatabase, attempts_app
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    first, second = (_uploaded(call, trainee, attempt["id"]) for _ in range(2))
    assert _confirm(call, trainee, attempt["id"], first).status == 200
    recorded = _row(database, attempt["id"])
    reply = _confirm(call, trainee, attempt["id"], second)
    assert reply.status == 409
    assert "recording" in reply.problem["detail"]
    assert _row(database, attempt["id"]) == recorded
    assert _stored(attempts_app, first)
    assert not _stored(attempts_app, second), "the refused object was left behind"
    # And asking for a third upload is refused before anything is signed.
    request = {"content_type": "audio/wav", "size_bytes": len(AUDIO)}
    assert call(attempt_event("POST", attempt["id"], trainee, "upload", request)).status == 409


def test_an_abandoned_attempt_takes_no_upload_and_no_confirm(
    call, world: World, database: MigratedDatabase, attempts_app
) -> None:
    trainee = world.users["trainee_a1"]
    attempt = start(call, trainee, world.scenarios["a"])
    key = _uploaded(call, trainee, attempt["id"])
    abandon = {"status": "abandoned"}
    assert call(attempt_event("POST", attempt["id"], trainee, "submit", abandon)).status == 200
    request = {"content_type": "audio/wav", "size_bytes": len(AUDIO)}
    refused = call(attempt_event("POST", attempt["id"], trainee, "upload", request))
    assert (refused.status, refused.problem.get("status_value")) == (409, "abandoned")
    reply = _confirm(call, trainee, attempt["id"], key)
    assert reply.status == 409
    assert _row(database, attempt["id"])[2] is None
    assert not _stored(attempts_app, key)


def test_two_concurrent_confirms_of_two_objects_record_exactly_one(
    call, world: World, database: MigratedDatabase, attempts_app
) -> None:
    trainee = world.users["trainee_a2"]
    for _ in range(3):
        attempt = start(call, trainee, world.scenarios["a"])
        keys = [_uploaded(call, trainee, attempt["id"]) for _ in range(2)]
        replies = dict(
            zip(
                keys,
                _race(*(partial(_confirm, call, trainee, attempt["id"], key) for key in keys)),
                strict=True,
            )
        )
        statuses = sorted(reply.status for reply in replies.values())
        assert statuses == [200, 409], statuses
        (won,) = [key for key, reply in replies.items() if reply.status == 200]
        (lost,) = [key for key in keys if key != won]
        assert _row(database, attempt["id"])[2] == won
        assert _stored(attempts_app, won)
        assert not _stored(attempts_app, lost)


def test_a_confirm_racing_an_abandon_never_lands_on_the_abandoned_attempt(
    call, world: World, database: MigratedDatabase
) -> None:
    trainee = world.users["trainee_a2"]
    for _ in range(5):
        attempt = start(call, trainee, world.scenarios["a"])
        key = _uploaded(call, trainee, attempt["id"])
        abandon = attempt_event("POST", attempt["id"], trainee, "submit", {"status": "abandoned"})
        confirmed, abandoned = _race(
            partial(_confirm, call, trainee, attempt["id"], key), partial(call, abandon)
        )
        replies = {"confirm": confirmed, "abandon": abandoned}
        assert replies["abandon"].status == 200
        status, version, path = _row(database, attempt["id"])
        assert status == "abandoned"
        if replies["confirm"].status == 200:
            # The recording landed first: the abandon came after it, on a later version.
            assert path == key
            assert replies["confirm"].body["version"] < version
        else:
            assert replies["confirm"].status == 409
            assert path is None
