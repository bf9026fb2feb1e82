"""Recordings of attempts: a presigned S3 POST bound to type, size and key, and
the confirm step that checks the object before the attempt points at it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from practice.attempts import rules
from practice.attempts.models import (
    RECORDING_MAX_BYTES,
    RECORDING_TYPES,
    ConfirmUpload,
    RecordingConfirmed,
    RequestUpload,
    UploadTicket,
)
from practice.attempts.service import attempt_tag
from practice.core.cache import TenantCache
from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Invalid, NotFound, Unavailable
from practice.core.identity import Principal
from practice.core.storage import s3_client

# The upload verdict of attempt_verdict() (0018), read before anything touches
# the bucket, and the write that judges again on the locked row.
_VALIDATE_UPLOAD = "select * from validate_attempt_upload(%(id)s)"
_RECORD_RECORDING = (
    "select * from attempt_record_recording(%(org_id)s, %(user_id)s, %(id)s, %(key)s)"
)


@dataclass
class RecordingService:
    """Uploads of attempt recordings to the uploads bucket."""

    db: Database
    cache: TenantCache
    settings: Settings
    s3_override: Any = None
    # The contract's limit; a test gives a smaller one so an oversized file is cheap.
    max_bytes: int = RECORDING_MAX_BYTES

    @property
    def s3(self) -> Any:
        """The S3 client (created on first use)."""
        return self.s3_override or s3_client(self.settings.s3_endpoint_url)

    def _prefix(self, principal: Principal, attempt_id: UUID) -> str:
        return f"recordings/{principal.org_id}/{attempt_id}/"

    def _is_this_attempts_key(self, principal: Principal, attempt_id: UUID, key: str) -> bool:
        # The model checked the shape; the prefix says whose attempt it is for.
        return key.startswith(self._prefix(principal, attempt_id))

    def _uploadable(self, principal: Principal, attempt_id: UUID) -> dict[str, Any]:
        """The upload verdict of the attempt (raises for not_found and forbidden;
        the other refusals are the caller's to weigh)."""
        row = self.db.query(principal, _VALIDATE_UPLOAD, {"id": attempt_id})[0]
        if row["reason"] in ("not_found", "forbidden"):
            rules.refuse(row["reason"], attempt_id, action="upload")
        return row

    def request_upload(
        self, principal: Principal, attempt_id: UUID, body: RequestUpload
    ) -> UploadTicket:
        """A presigned S3 POST for the recording, bound to type, size and key."""
        content_type = body.content_type  # one of RECORDING_TYPES, as the contract says
        if body.size_bytes > self.max_bytes:
            raise Invalid(
                f"size_bytes exceeds the limit of {self.max_bytes}", field="body.size_bytes"
            )
        verdict = self._uploadable(principal, attempt_id)
        reason, status = verdict["reason"] or "ok", verdict["status"]
        rules.refuse(reason, attempt_id, action="upload", status=status)
        prefix = self._prefix(principal, attempt_id)
        key = f"{prefix}{uuid.uuid4()}.{content_type.split('/', 1)[1]}"
        expiry = self.settings.upload_url_expiry_seconds
        post = self.s3.generate_presigned_post(
            Bucket=self.settings.uploads_bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, self.max_bytes],
                ["starts-with", "$key", prefix],
            ],
            ExpiresIn=expiry,
        )
        return UploadTicket(
            url=post["url"],
            fields=post["fields"],
            key=key,
            max_bytes=self.max_bytes,
            expires_at=datetime.now(UTC) + timedelta(seconds=expiry),
        )

    def confirm_upload(
        self, principal: Principal, attempt_id: UUID, body: ConfirmUpload
    ) -> RecordingConfirmed:
        """Check the uploaded object (present, size, type) and record its path.

        The POST policy is only as good as the storage that enforces it (moto,
        for one, does not), so these checks are what stand between a bad upload
        and ``recording_path``. The attempt is judged again on its locked row
        when the path is written, so an abandon or another confirm that lands
        between the check and the write is seen. An object that can never be
        recorded (refused, or the attempt took another one) is deleted rather
        than left in the bucket; confirming the recorded one again is a repeat.
        """
        if not self._is_this_attempts_key(principal, attempt_id, body.key):
            raise NotFound(
                "no recording upload this API issued for this attempt has that key",
                errors=[{"field": "body.key", "message": "not a key issued for this attempt"}],
            )
        verdict = self._uploadable(principal, attempt_id)
        if verdict["recording_path"] != body.key:
            self._refuse_upload(attempt_id, body.key, verdict["reason"], verdict["status"])
        head = self._head(body.key)
        problem = self._recording_problem(head)
        if problem:
            self._delete(body.key)
            raise Invalid(
                f"the uploaded recording was refused: {problem}",
                errors=[{"field": "body.key", "message": problem}],
            )
        params = {
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "id": attempt_id,
            "key": body.key,
        }
        (row,) = self.db.query(principal, _RECORD_RECORDING, params, idempotent=False)
        self._refuse_upload(attempt_id, body.key, row["verdict"], None)
        if not row["replayed"]:
            self.cache.invalidate_tag(principal.org_id, attempt_tag(attempt_id))
        return RecordingConfirmed.model_validate(row | {"size_bytes": head["ContentLength"]})

    def _refuse_upload(self, attempt_id: UUID, key: str, reason: str | None, status: Any) -> None:
        # The object under this attempt's prefix can never be recorded once the
        # attempt refuses it for good: delete it rather than leave it behind.
        if reason in ("invalid_status", "recording_already_uploaded"):
            self._delete(key)
        rules.refuse(reason or "ok", attempt_id, action="upload", status=status)

    def _delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.settings.uploads_bucket, Key=key)

    def _head(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.settings.uploads_bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise NotFound(
                    f"nothing was uploaded at {key}",
                    errors=[{"field": "body.key", "message": "nothing uploaded there"}],
                ) from exc
            raise Unavailable("the recording store did not answer", retry_after=5) from exc

    def _recording_problem(self, head: dict[str, Any]) -> str | None:
        size = head.get("ContentLength", 0)
        content_type = (head.get("ContentType") or "").split(";")[0].strip().lower()
        if size <= 0:
            return "the object is empty"
        if size > self.max_bytes:
            return f"{size} bytes exceeds the limit of {self.max_bytes}"
        if content_type not in RECORDING_TYPES:
            return f"content type {content_type or 'missing'} is not an accepted audio type"
        return None
