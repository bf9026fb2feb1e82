"""The exports worker: one export per queue message, streamed from
``COPY (SELECT ...) TO STDOUT`` into an S3 multipart upload, part by part, in
constant memory, under the requester's principal (so row-level security decides
what the file holds).

Every state change is guarded in SQL (sql/migrations/0028_export_runs.sql): a
message delivered twice, or to two workers at once, starts one run; a run whose
worker was killed is taken over once its lease runs out. Any failure (the
database, S3, the invocation's time running out) aborts the upload, so no
partial object is left, and marks the export failed with a reason.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from practice.core.budget import seconds_left
from practice.core.config import Settings
from practice.core.db import Database, is_unreachable
from practice.core.errors import MembershipChanged, Unavailable
from practice.core.identity import Principal, Role
from practice.core.runtime import logger, metrics
from practice.core.storage import s3_client
from practice.events import Permanent
from practice.exports.service import content_disposition, export_key, file_name, filters_of

# The export's statement, bound client-side (COPY takes no server parameters).
COPY_ATTEMPTS = (
    "copy (select * from export_attempt_rows(%s, %s, %s, %s, %s)) to stdout (format csv, header)"
)
_CLAIM = "select * from export_claim(%(id)s, %(lease)s)"
_STATE = "select status, lease_until from exports where id = %(id)s"
_PROGRESS = "select export_progress(%(id)s, %(run)s, %(rows)s, %(bytes)s, %(lease)s) as ours"
_FINISH = "select export_finish(%(id)s, %(run)s, %(key)s, %(rows)s, %(bytes)s) as ours"
_FAIL = "select export_fail(%(id)s, %(run)s, %(reason)s) as ours"
# Timestamps in the file read as UTC whatever the server's default.
_UTC = "select set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO', true)"
# Allocations this large or larger get a mapping of their own (glibc's M_MMAP_THRESHOLD).
_MAPPED_FROM = 1 << 20
# A message for a row not (yet) visible: the request that sent it commits right
# after sending, so a few receives are worth waiting for; then it never will.
_RECEIVES_FOR_A_MISSING_ROW = 3


class RunStopped(Exception):
    """The run cannot go on; ``reason`` is what the export says."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Outcome:
    """What one message did: ``succeeded``, ``failed``, or ``skipped`` (nothing
    to do: finished already, or running elsewhere)."""

    status: str
    rows: int = 0
    bytes: int = 0
    parts: int = 0
    peak_buffer: int = 0


@dataclass
class ExportWorker:
    """Runs exports from their queue messages."""

    db: Database
    settings: Settings
    s3_override: Any = None
    # Called after each part is uploaded (tests inject failures here).
    on_part: Callable[[int], None] | None = None
    # What the last message did (the bench and tests read it).
    last: Outcome | None = None

    @property
    def s3(self) -> Any:
        return self.s3_override or s3_client(self.settings.s3_endpoint_url)

    def handle_record(self, record: SQSRecord) -> None:
        """One queue message: ``{"export_id", "org_id"}``."""
        try:
            body = json.loads(record.body)
            export_id, org_id = UUID(body["export_id"]), UUID(body["org_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Permanent(f"not an export message: {exc}") from exc
        receives = int(record.attributes.approximate_receive_count or 1)
        self.run(export_id, org_id, receives=receives)

    def run(self, export_id: UUID, org_id: UUID, *, receives: int = 1) -> Outcome:
        """Claim the export and write its file, or do nothing when it is not ours."""
        system = Principal.system("exports", org_id)
        claimed = self._claim(system, export_id)
        if not claimed:
            return self._not_claimed(system, export_id, receives)
        row = claimed[0]
        try:
            outcome = self._write(system, row)
        except RunStopped as stop:
            self._fail(system, row, stop.reason)
            outcome = Outcome("failed")
        metrics.add_metric(name=f"Exports{outcome.status.title()}", unit=MetricUnit.Count, value=1)
        self.last = outcome
        return outcome

    def _claim(self, system: Principal, export_id: UUID) -> list[dict[str, Any]]:
        # The request sends its message just before it commits: a message may
        # come first. It is worth waiting a moment here rather than a whole
        # visibility timeout (an hour and a half) for the redelivery.
        params = {"id": export_id, "lease": self.settings.export_lease_seconds}
        waited, pause, seen_pending = 0.0, 0.05, False
        while True:
            claimed = self.db.query(system, _CLAIM, params, idempotent=False)
            if claimed or waited >= self.settings.export_missing_row_wait_seconds:
                return claimed
            state = self.db.query(system, _STATE, {"id": export_id})
            if state and state[0]["status"] != "pending":
                return claimed  # there, and not ours to run
            if state and not seen_pending:
                # Committed between the claim and this look: claim it now (once at
                # once; after that, within the same bounded wait).
                seen_pending = True
                continue
            time.sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 1.0)

    def _not_claimed(self, system: Principal, export_id: UUID, receives: int) -> Outcome:
        rows = self.db.query(system, _STATE, {"id": export_id})
        if not rows:
            if receives < _RECEIVES_FOR_A_MISSING_ROW:
                raise LookupError(f"export {export_id} is not visible yet; it will be retried")
            raise Permanent(f"export {export_id} does not exist")
        logger.info(
            "export not claimed: finished, or running under a live lease",
            extra={"export_id": str(export_id), "status": rows[0]["status"]},
        )
        outcome = Outcome("skipped")
        self.last = outcome
        return outcome

    def _fail(self, system: Principal, row: dict[str, Any], reason: str) -> None:
        logger.warning("export failed", extra={"export_id": str(row["id"]), "reason": reason})
        self.db.query(
            system, _FAIL, {"id": row["id"], "run": row["run"], "reason": reason}, idempotent=False
        )

    def _write(self, system: Principal, row: dict[str, Any]) -> Outcome:
        bucket = self.settings.uploads_bucket
        key = export_key(row["org_id"], row["id"])
        requester = Principal(row["requested_by"], row["org_id"], Role(row["requester_role"]))
        try:
            upload = self.s3.create_multipart_upload(
                Bucket=bucket,
                Key=key,
                ContentType="text/csv; charset=utf-8",
                ContentDisposition=content_disposition(file_name(row)),
            )
        except Exception as exc:
            raise RunStopped(f"storage refused the upload: {_short(exc)}") from exc
        upload_id = upload["UploadId"]
        try:
            outcome = self._stream(system, requester, row, key=key, upload_id=upload_id)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                self.s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            if isinstance(exc, RunStopped):
                raise
            if isinstance(exc, Exception):
                raise RunStopped(_reason(exc)) from exc
            raise
        return outcome

    def _stream(
        self,
        system: Principal,
        requester: Principal,
        row: dict[str, Any],
        *,
        key: str,
        upload_id: str,
    ) -> Outcome:
        part_bytes = self.settings.export_part_bytes
        margin = self.settings.export_stop_margin_seconds
        _map_large_buffers()
        outcome = Outcome("succeeded")
        buffer = bytearray()
        blocks = 0

        def uploaded(number: int) -> None:
            # A part is stored: progress (and the lease) move on.
            outcome.rows = blocks - 1
            self._progress(system, row, outcome)
            if self.on_part is not None:
                self.on_part(number)

        # Parts go up in a thread of their own while COPY goes on filling the
        # next one: at most one part in flight and one filling.
        bucket = self.settings.uploads_bucket
        target = {"bucket": bucket, "key": key, "upload_id": upload_id}
        with _Parts(self.s3, **target, outcome=outcome, uploaded=uploaded) as parts:
            with (
                self.db.streaming(
                    requester, statement_timeout_ms=self.settings.export_statement_timeout_ms
                ) as conn,
                conn.cursor() as cur,
            ):
                cur.execute(_UTC)
                with cur.copy(COPY_ATTEMPTS, filters_of(row)) as copy:
                    for block in copy:
                        buffer += block
                        blocks += 1
                        if len(buffer) >= part_bytes:
                            # Handed over; COPY fills a new one.
                            parts.send(buffer)
                            buffer = bytearray()
                            if seconds_left(math.inf) < margin:
                                raise RunStopped(
                                    "the invocation's time ran out before the file was"
                                    " written; request the export again with a shorter period"
                                )
                outcome.rows = max(cur.rowcount, blocks - 1)
            if buffer or not parts.sent:
                parts.send(buffer)
                buffer = bytearray()
            stored = parts.finish()
        outcome.rows = max(outcome.rows, blocks - 1)
        try:
            self.s3.complete_multipart_upload(
                Bucket=self.settings.uploads_bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": stored},
            )
        except Exception as exc:
            raise RunStopped(f"storage failed to complete the file: {_short(exc)}") from exc
        params = {
            "id": row["id"],
            "run": row["run"],
            "key": key,
            "rows": outcome.rows,
            "bytes": outcome.bytes,
        }
        (done,) = self.db.query(system, _FINISH, params, idempotent=False)
        if not done["ours"]:
            logger.warning("export run was taken over before it finished", extra={"id": row["id"]})
        return outcome

    def _progress(self, system: Principal, row: dict[str, Any], outcome: Outcome) -> None:
        params = {
            "id": row["id"],
            "run": row["run"],
            "rows": outcome.rows,
            "bytes": outcome.bytes,
            "lease": self.settings.export_lease_seconds,
        }
        (moved,) = self.db.query(system, _PROGRESS, params, idempotent=False)
        if not moved["ours"]:
            raise RunStopped("the run was taken over by another worker")


class _Parts:
    """The parts of one multipart upload, sent one at a time in a thread of
    their own: ``send`` waits for the part before (so memory holds at most the
    part in flight and the one filling), and reports each stored part."""

    def __init__(
        self,
        s3: Any,
        *,
        bucket: str,
        key: str,
        upload_id: str,
        outcome: Outcome,
        uploaded: Callable[[int], None],
    ) -> None:
        self.s3, self.bucket, self.key, self.upload_id = s3, bucket, key, upload_id
        self.outcome, self.uploaded = outcome, uploaded
        self.stored: list[dict[str, Any]] = []
        self.sent = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="export-part")
        self._flight: Future[dict[str, Any]] | None = None

    def __enter__(self) -> _Parts:
        return self

    def __exit__(self, *_exc: object) -> None:
        # On a failure too: nothing may still be uploading when the upload is aborted.
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _put(self, number: int, body: bytes) -> dict[str, Any]:
        try:
            answer = self.s3.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=body,
            )
        except Exception as exc:
            raise RunStopped(f"storage failed on part {number}: {_short(exc)}") from exc
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _land(self) -> None:
        if self._flight is None:
            return
        part, self._flight = self._flight.result(), None
        self.stored.append(part)
        self.uploaded(part["PartNumber"])

    def send(self, body: bytearray) -> None:
        """Upload ``body`` as the next part, once the part before is stored.

        The part goes as ``bytes``: botocore streams a ``BytesIO`` over bytes
        without copying them, whereas over HTTPS (AWS: its CRC32 in a trailer)
        it would copy a ``bytearray`` whole into one, a third part in memory.
        This copy is made once the part before is stored and its buffer gone,
        and the caller drops ``body`` after it: two parts at most."""
        self._land()
        self.sent += 1
        self.outcome.bytes += len(body)
        self.outcome.peak_buffer = max(self.outcome.peak_buffer, len(body))
        self.outcome.parts = self.sent
        self._flight = self._pool.submit(self._put, self.sent, bytes(body))

    def finish(self) -> list[dict[str, Any]]:
        """Every part, once stored."""
        self._land()
        return self.stored


@functools.cache
def _map_large_buffers() -> None:
    """Give every part a mapping of its own, returned to the system when freed.

    glibc serves a large allocation with its own mapping, but raises that
    threshold to the size of each such block freed (up to 32 MiB): after the
    first part, parts come from the heap, and a freed one stays resident, one
    part more in the peak (measured: 100 MiB instead of 92). A fixed threshold
    turns that off (a growing part then grows by mremap, without a copy). Once
    per process; nothing to do off glibc."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(-3, _MAPPED_FROM)  # M_MMAP_THRESHOLD


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _reason(exc: BaseException) -> str:
    """What a failed export says: the kind of failure, without internals."""
    if isinstance(exc, MembershipChanged):
        return "the requester is no longer a member of the organization with that role"
    if isinstance(exc, Unavailable) or is_unreachable(exc):
        return "the database became unreachable while the file was written"
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "57014":
        return "the export's statement ran out of time"
    if sqlstate:
        return f"the database failed ({sqlstate}): {_short(exc)}"
    return f"the export failed: {_short(exc)}"
