"""Recordings of attempts: a presigned S3 POST bound to type, size and key, and
the confirm step that checks the object before the attempt points at it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from practice.attempts.models import (
    ConfirmUpload,
    RecordingConfirmed,
    RequestUpload,
    UploadTicket,
)
from practice.attempts.rules import IN_CALLERS_ORG
from practice.attempts.service import attempt_tag
from practice.cache import TenantCache
from practice.config import Settings
from practice.db import Database
from practice.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from practice.identity import Principal
from practice.storage import s3_client

_VALIDATE_UPLOAD = "select * from validate_attempt_upload(%(id)s)"

_RECORD_RECORDING = f"""
update scenario_attempts
   set recording_path = %(key)s, version = version + 1, updated_at = now()
 where id = %(id)s and {IN_CALLERS_ORG}
   and (status = 'in_progress' or recording_path is null)
returning id, version, recording_path, updated_at
"""


@dataclass
class RecordingService:
    """Uploads of attempt recordings to the uploads bucket."""

    db: Database
    cache: TenantCache
    settings: Settings
    s3_override: Any = None

    @property
    def s3(self) -> Any:
        """The S3 client (created on first use)."""
        return self.s3_override or s3_client(self.settings.s3_endpoint_url)

    def _prefix(self, principal: Principal, attempt_id: UUID) -> str:
        return f"recordings/{principal.org_id}/{attempt_id}/"

    def _is_recording_key(self, principal: Principal, attempt_id: UUID, key: str) -> bool:
        # Exactly the shape request_upload issues: prefix, a UUID, an extension.
        prefix = re.escape(self._prefix(principal, attempt_id))
        return re.fullmatch(prefix + r"[0-9a-f-]{36}\.[a-z0-9.+-]{1,20}", key) is not None

    def _check_uploadable(self, principal: Principal, attempt_id: UUID) -> None:
        verdict = self.db.query(principal, _VALIDATE_UPLOAD, {"id": attempt_id})[0]
        if verdict["reason"] == "not_found":
            raise NotFound(f"attempt {attempt_id} not found")
        if verdict["reason"] == "not_owner":
            raise Forbidden("only the trainee who owns the attempt may upload its recording")
        if not verdict["valid"]:
            raise Conflict(f"attempt {attempt_id} does not accept a recording: {verdict['reason']}")

    def request_upload(
        self, principal: Principal, attempt_id: UUID, body: RequestUpload
    ) -> UploadTicket:
        """A presigned S3 POST for the recording, bound to type, size and key."""
        content_type = body.content_type.lower()
        if content_type not in self.settings.recording_content_types:
            allowed = ", ".join(self.settings.recording_content_types)
            raise Invalid(f"content_type must be one of {allowed}", field="content_type")
        if body.size_bytes > self.settings.recording_max_bytes:
            raise Invalid(
                f"size_bytes exceeds the limit of {self.settings.recording_max_bytes}",
                field="size_bytes",
            )
        self._check_uploadable(principal, attempt_id)
        prefix = self._prefix(principal, attempt_id)
        key = f"{prefix}{uuid.uuid4()}.{content_type.split('/', 1)[1]}"
        expiry = self.settings.upload_url_expiry_seconds
        post = self.s3.generate_presigned_post(
            Bucket=self.settings.uploads_bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, self.settings.recording_max_bytes],
                ["starts-with", "$key", prefix],
            ],
            ExpiresIn=expiry,
        )
        return UploadTicket(
            url=post["url"],
            fields=post["fields"],
            key=key,
            max_bytes=self.settings.recording_max_bytes,
            expires_at=datetime.now(UTC) + timedelta(seconds=expiry),
        )

    def confirm_upload(
        self, principal: Principal, attempt_id: UUID, body: ConfirmUpload
    ) -> RecordingConfirmed:
        """Check the uploaded object (present, size, type) and record its path.

        The POST policy is only as good as the storage that enforces it (moto,
        for one, does not), so these checks are what stand between a bad upload
        and ``recording_path``.
        """
        self._check_uploadable(principal, attempt_id)
        if not self._is_recording_key(principal, attempt_id, body.key):
            raise Invalid(
                "key is not a recording key this API issued for this attempt", field="key"
            )
        head = self._head(body.key)
        problem = self._recording_problem(head)
        if problem:
            self.s3.delete_object(Bucket=self.settings.uploads_bucket, Key=body.key)
            raise Invalid(f"the uploaded recording was refused: {problem}", field="key")
        params = {"id": attempt_id, "org_id": principal.org_id, "key": body.key}
        rows = self.db.query(principal, _RECORD_RECORDING, params)
        if not rows:  # a concurrent confirm recorded one first
            raise Conflict(f"attempt {attempt_id} already has its recording")
        self.cache.invalidate_tag(principal.org_id, attempt_tag(attempt_id))
        return RecordingConfirmed.model_validate(rows[0] | {"size_bytes": head["ContentLength"]})

    def _head(self, key: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.settings.uploads_bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise Invalid(f"nothing was uploaded at {key}", field="key") from exc
            raise Unavailable("the recording store did not answer", retry_after=5) from exc

    def _recording_problem(self, head: dict[str, Any]) -> str | None:
        size = head.get("ContentLength", 0)
        content_type = (head.get("ContentType") or "").split(";")[0].strip().lower()
        if size <= 0:
            return "the object is empty"
        if size > self.settings.recording_max_bytes:
            return f"{size} bytes exceeds the limit of {self.settings.recording_max_bytes}"
        if content_type not in self.settings.recording_content_types:
            return f"content type {content_type or 'missing'} is not an accepted audio type"
        return None
