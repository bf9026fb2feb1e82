"""What the exports take and give."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, model_validator

from practice.core.model import Model

ExportKind = Literal["attempts"]
ExportStatus = Literal["pending", "running", "succeeded", "failed", "expired"]
# A Clerk user id as the tables store it.
USER_ID_PATTERN = r"^[A-Za-z0-9_]{1,128}$"
UserId = Annotated[str, Field(pattern=USER_ID_PATTERN)]
MAX_PAGE = 100


class _Strict(Model):
    model_config = ConfigDict(extra="forbid")


class AttemptFilters(_Strict):
    """Which attempts: those started on the UTC dates ``from``..``to`` (inclusive;
    ``to`` not before ``from``, and at most a year apart by default, a setting),
    optionally of one scenario, one user, or one manager's team (``team``: the
    manager's user id). What the requester may see bounds them all."""

    from_: date = Field(alias="from")
    to: date
    scenario_id: UUID | None = None
    user_id: UserId | None = None
    team: UserId | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> AttemptFilters:
        if self.to < self.from_:
            raise ValueError("`to` is before `from`")
        return self


class RequestExport(_Strict):
    """`POST /exports`."""

    kind: ExportKind
    filters: AttemptFilters
    format: Literal["csv"] = "csv"


class Export(Model):
    """An export as its requester sees it. ``download_url`` is minted for this
    answer (``download_expires_at``) when the file is ready; ask again for
    another."""

    id: UUID
    kind: ExportKind
    format: Literal["csv"]
    status: ExportStatus
    filters: dict[str, str | None]
    requested_by: str
    row_count: int | None
    bytes: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    file_name: str
    download_url: str | None = None
    download_expires_at: datetime | None = None


class ExportPage(Model):
    """A page of exports, newest first; ``next`` continues after its last one."""

    items: list[Export]
    next: str | None
