"""Exports as their requesters see them: asked for (a pending row and a message
to the worker's queue, in one transaction), read back with a download URL
minted for that answer, and listed newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.types.json import Jsonb

from practice.core.config import Settings
from practice.core.db import Database
from practice.core.errors import Invalid, NotFound, Unavailable
from practice.core.identity import Principal
from practice.core.storage import s3_client
from practice.exports.models import Export, ExportPage, RequestExport

_COLUMNS = (
    "id, kind, filters, status, requested_by, row_count, bytes, error, created_at,"
    " run_started_at, completed_at, s3_key"
)
_INSERT = f"""
insert into exports (org_id, requested_by, requester_role, kind, filters)
values (%(org_id)s, %(user_id)s, %(role)s, %(kind)s, %(filters)s)
returning {_COLUMNS}
"""
_ONE = f"select {_COLUMNS} from exports where id = %(id)s"
# Newest first by the (org, created_at desc, id desc) index; RLS shows a member
# their own exports and an admin the org's.
_PAGE = f"""
select {_COLUMNS} from exports
 where org_id = %(org_id)s
   and (%(after_at)s::timestamptz is null or (created_at, id) < (%(after_at)s, %(after_id)s::uuid))
 order by created_at desc, id desc
 limit %(limit)s
"""


@lru_cache(maxsize=4)
def sqs_client(endpoint_url: str | None = None) -> Any:
    """The SQS client (created on first use)."""
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint_url)


def export_key(org_id: UUID | str, export_id: UUID | str) -> str:
    """Where an export's file lives in the bucket (the lifecycle rule's prefix)."""
    return f"exports/{org_id}/{export_id}.csv"


def file_name(row: dict[str, Any]) -> str:
    """The name a download is saved under: what it holds and which dates."""
    filters = row["filters"] or {}
    period = f"{filters.get('from', '')}_to_{filters.get('to', '')}"
    return f"{row['kind']}_{period}_{str(row['id'])[:8]}.csv"


def content_disposition(name: str) -> str:
    """``attachment`` with the file name (it holds only safe characters)."""
    return f'attachment; filename="{name}"'


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# A page's position: after the export created at <microseconds since the epoch>
# with id <hex>. Any string of this shape is a position (the contract says so).
CURSOR_PATTERN = r"^[0-9]{1,17}_[0-9a-f]{32}$"


def _encode_cursor(row: dict[str, Any]) -> str:
    return f"{(row['created_at'] - _EPOCH) // _MICROSECOND}_{row['id'].hex}"


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    micros, _, ident = cursor.partition("_")
    return _EPOCH + int(micros) * _MICROSECOND, UUID(hex=ident)


@dataclass
class ExportService:
    """Requests, reads and lists of exports (the worker is ``ExportWorker``)."""

    db: Database
    settings: Settings
    s3_override: Any = None
    sqs_override: Any = None

    @property
    def s3(self) -> Any:
        return self.s3_override or s3_client(self.settings.s3_endpoint_url)

    @property
    def sqs(self) -> Any:
        return self.sqs_override or sqs_client(self.settings.sqs_endpoint_url)

    def request(
        self, principal: Principal, body: RequestExport, conn: Connection | None = None
    ) -> Export:
        """A pending export of the caller, queued for the worker. The message is
        sent before the row commits: a failed send fails the request and
        leaves nothing pending (the worker waits for a row not yet visible)."""
        if not self.settings.exports_queue_url:
            raise Unavailable("exports are not configured here (no queue)", retry_after=60)
        filters = body.filters
        span = (filters.to - filters.from_).days + 1
        if span > self.settings.export_max_span_days:
            raise Invalid(
                f"an export covers at most {self.settings.export_max_span_days} days;"
                f" this one {span}",
                field="body.filters.to",
            )
        if conn is None:
            with self.db.transaction(principal) as own:
                return self._request(principal, body, own)
        return self._request(principal, body, conn)

    def _request(self, principal: Principal, body: RequestExport, conn: Connection) -> Export:
        params = {
            "org_id": principal.org_id,
            "user_id": principal.user_id,
            "role": principal.role.value,
            "kind": body.kind,
            "filters": Jsonb(body.filters.model_dump(mode="json", by_alias=True)),
        }
        (row,) = self.db.query(principal, _INSERT, params, conn=conn)
        message = {"export_id": str(row["id"]), "org_id": str(principal.org_id)}
        try:
            self.sqs.send_message(
                QueueUrl=self.settings.exports_queue_url, MessageBody=json.dumps(message)
            )
        except Exception as exc:
            raise Unavailable("the export could not be queued; retry", retry_after=5) from exc
        return self._export(row, minted=False)

    def get(self, principal: Principal, export_id: UUID) -> Export:
        """The export, with a download URL minted now when its file is ready."""
        rows = self.db.query(principal, _ONE, {"id": export_id})
        if not rows:
            raise NotFound(f"export {export_id} does not exist or is not the caller's")
        return self._export(rows[0], minted=True)

    def page(self, principal: Principal, limit: int, cursor: str | None) -> ExportPage:
        """The caller's exports (an admin's: the org's), newest first."""
        after_at, after_id = _decode_cursor(cursor) if cursor else (None, None)
        rows = self.db.query(
            principal,
            _PAGE,
            {
                "org_id": principal.org_id,
                "after_at": after_at,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = [self._export(row, minted=False) for row in rows]
        return ExportPage(items=items, next=_encode_cursor(rows[-1]) if more else None)

    def _expired(self, row: dict[str, Any]) -> bool:
        done = row["completed_at"]
        retention = timedelta(days=self.settings.export_retention_days)
        return done is not None and done + retention <= datetime.now(UTC)

    def _export(self, row: dict[str, Any], *, minted: bool) -> Export:
        status = row["status"]
        if status == "succeeded" and self._expired(row):
            status = "expired"
        name = file_name(row)
        url = expires = None
        if minted and status == "succeeded" and row["s3_key"]:
            lifetime = self.settings.export_url_expiry_seconds
            expires = datetime.now(UTC) + timedelta(seconds=lifetime)
            url = self.s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.settings.uploads_bucket,
                    "Key": row["s3_key"],
                    "ResponseContentDisposition": content_disposition(name),
                    "ResponseContentType": "text/csv; charset=utf-8",
                },
                ExpiresIn=lifetime,
            )
        stored = row["filters"] or {}
        filters = {k: (str(v) if v is not None else None) for k, v in stored.items()}
        return Export(
            id=row["id"],
            kind=row["kind"],
            format="csv",
            status=status,
            filters=filters,
            requested_by=row["requested_by"],
            row_count=row["row_count"],
            bytes=row["bytes"],
            error=row["error"],
            created_at=row["created_at"],
            started_at=row["run_started_at"],
            completed_at=row["completed_at"],
            file_name=name,
            download_url=url,
            download_expires_at=expires,
        )


def filters_of(row: dict[str, Any]) -> tuple[date, date, UUID | None, str | None, str | None]:
    """The export statement's arguments from a row's stored filters."""
    f = row["filters"]
    scenario = f.get("scenario_id")
    return (
        date.fromisoformat(f["from"]),
        date.fromisoformat(f["to"]),
        UUID(scenario) if scenario else None,
        f.get("user_id"),
        f.get("team"),
    )
