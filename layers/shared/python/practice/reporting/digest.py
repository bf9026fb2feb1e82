"""The weekly manager digest: for each manager with a team (their current direct
reports), the week that ended (ISO, Monday to Sunday, UTC) beside the week
before: top and bottom 5 performers, the team's average score, the completion
of assignments due that week. Sent by SES as HTML (inline styles, a bar chart
drawn with CSS, no images) with a plain-text part.

At most once per (manager, ISO week): each send runs under a dedupe record
(scope ``digest``, key ``org:manager:week``) committed with it, so a schedule
that fires twice or a retried run sends nothing twice. Managers without a team
or an email, and those who opted out, are skipped and counted; one manager's
failure is counted and does not stop the others (the run then fails, and its
retry sends only what is missing). Each org is read as the system principal
of that org, which sees that org's rows only.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from practice.core.db import Database
from practice.core.dedupe import Dedupe, DedupeKey, Handled, request_hash
from practice.core.identity import Principal
from practice.core.runtime import logger

JOB = "weekly-digest"

ORGS = "select id from orgs where deleted_at is null order by id"

MANAGERS = """
select m.user_id, m.display_name, m.email, m.digest_opt_out,
       array(select r.user_id from org_members r
              where r.org_id = m.org_id and r.manager_user_id = m.user_id
                and r.deleted_at is null order by r.user_id) as team
  from org_members m
 where m.org_id = (select practice_org()) and m.deleted_at is null
   and (m.role = 'manager'
        or exists (select 1 from org_members r where r.org_id = m.org_id
                    and r.manager_user_id = m.user_id and r.deleted_at is null))
   and (%(only)s::text is null or m.user_id = %(only)s)
 order by m.user_id
"""

MEMBER_WEEKS = """
select u.user_id, coalesce(m.display_name, u.user_id) as name,
       sum(u.attempts) filter (where u.day >= %(week)s) as attempts,
       sum(u.scored) filter (where u.day >= %(week)s) as scored,
       sum(u.score_sum) filter (where u.day >= %(week)s) as score_sum,
       sum(u.scored) filter (where u.day < %(week)s) as prev_scored,
       sum(u.score_sum) filter (where u.day < %(week)s) as prev_score_sum
  from rpt_user_day u
  left join org_members m on m.org_id = u.org_id and m.user_id = u.user_id
 where u.org_id = (select practice_org()) and u.user_id = any(%(team)s)
   and u.day >= %(previous)s and u.day < %(next)s
 group by u.user_id, m.display_name
"""

ASSIGNMENTS_DUE = """
select count(*) filter (where due_at >= %(week)s) as due,
       count(completed_at) filter (where due_at >= %(week)s and completed_at <= due_at) as done,
       count(*) filter (where due_at < %(week)s) as prev_due,
       count(completed_at) filter (where due_at < %(week)s and completed_at <= due_at)
           as prev_done
  from assignments
 where org_id = (select practice_org()) and assignee_user_id = any(%(team)s)
   and due_at >= %(previous)s and due_at < %(next)s
"""


def week_of(day: date) -> tuple[date, str]:
    """The Monday starting the ISO week before ``day``'s, and its name (2026-W48)."""
    monday = day - timedelta(days=day.weekday()) - timedelta(days=7)
    year, week, _ = monday.isocalendar()
    return monday, f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Performer:
    name: str
    avg_score: float
    attempts: int
    previous: float | None


@dataclass(frozen=True)
class Digest:
    """One manager's digest, ready to render."""

    org_id: UUID
    manager: str
    manager_name: str
    email: str
    week: str
    week_start: date
    members: int
    top: list[Performer]
    bottom: list[Performer]
    team_avg: float | None
    prev_team_avg: float | None
    completion: float | None
    prev_completion: float | None

    @property
    def subject(self) -> str:
        average = "no scored attempts" if self.team_avg is None else f"average {self.team_avg:.1f}"
        return f"Weekly team digest, {self.week}: {average}"


@dataclass
class DigestOutcome:
    """What a run did, by manager."""

    sent: int = 0
    already_sent: int = 0
    opted_out: int = 0
    skipped_no_team: int = 0
    skipped_no_email: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "already_sent": self.already_sent,
            "opted_out": self.opted_out,
            "skipped_no_team": self.skipped_no_team,
            "skipped_no_email": self.skipped_no_email,
            "failed": self.failed,
        }


class DigestFailed(RuntimeError):
    """Some managers' digests failed; the others were sent (a retry sends the rest)."""


def _avg(total: Any, count: Any) -> float | None:
    return float(Decimal(total) / Decimal(count)) if count else None


def _rate(done: Any, due: Any) -> float | None:
    return done / due if due else None


# -- rendering -------------------------------------------------------------------


def _figure(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.0f}%" if percent else f"{value:.1f}"


def _bar(value: float | None, colour: str) -> str:
    width = 0 if value is None else max(0, min(100, round(value)))
    return (
        '<div style="background:#eef0f3;border-radius:3px;width:200px;height:12px;">'
        f'<div style="background:{colour};border-radius:3px;width:{width * 2}px;height:12px;">'
        "</div></div>"
    )


def _rows_html(people: list[Performer], colour: str) -> str:
    if not people:
        return '<tr><td colspan="4" style="padding:4px;color:#667;">No scored attempts.</td></tr>'
    cells = []
    for p in people:
        cells.append(
            "<tr>"
            f'<td style="padding:4px 8px;">{html.escape(p.name)}</td>'
            f'<td style="padding:4px 8px;">{_bar(p.avg_score, colour)}</td>'
            f'<td style="padding:4px 8px;text-align:right;"><b>{p.avg_score:.1f}</b></td>'
            f'<td style="padding:4px 8px;color:#667;">last week {_figure(p.previous)}'
            f" · {p.attempts} attempts</td>"
            "</tr>"
        )
    return "".join(cells)


def render_html(d: Digest) -> str:
    """The digest as HTML a mail client shows: inline styles, CSS bars, no images."""
    font = "font-family:Helvetica,Arial,sans-serif;color:#1f2430;"
    return (
        f'<html><body style="margin:0;padding:24px;background:#f6f7f9;{font}">'
        '<div style="max-width:640px;margin:0 auto;background:#ffffff;padding:24px;'
        'border-radius:6px;">'
        f'<h1 style="font-size:20px;margin:0 0 4px 0;">Weekly team digest, {d.week}</h1>'
        f'<p style="margin:0 0 16px 0;color:#667;">{html.escape(d.manager_name)}\'s team'
        f" of {d.members}, week starting {d.week_start.isoformat()} (UTC)</p>"
        '<table style="border-collapse:collapse;margin-bottom:16px;"><tr>'
        '<td style="padding:8px 16px 8px 0;">Team average<br>'
        f'<span style="font-size:24px;font-weight:bold;">{_figure(d.team_avg)}</span>'
        f'<br><span style="color:#667;">last week {_figure(d.prev_team_avg)}</span></td>'
        '<td style="padding:8px 16px;">Assignments due, completed<br>'
        f'<span style="font-size:24px;font-weight:bold;">{_figure(d.completion, True)}</span>'
        f'<br><span style="color:#667;">last week {_figure(d.prev_completion, True)}</span></td>'
        "</tr></table>"
        '<h2 style="font-size:16px;margin:16px 0 4px 0;">Top performers</h2>'
        f'<table style="border-collapse:collapse;">{_rows_html(d.top, "#2e9d5b")}</table>'
        '<h2 style="font-size:16px;margin:16px 0 4px 0;">Needing support</h2>'
        f'<table style="border-collapse:collapse;">{_rows_html(d.bottom, "#d9822b")}</table>'
        "</div></body></html>"
    )


def render_text(d: Digest) -> str:
    """The plain-text part."""
    lines = [
        f"Weekly team digest, {d.week} (week starting {d.week_start.isoformat()}, UTC)",
        f"{d.manager_name}'s team of {d.members}",
        "",
        f"Team average: {_figure(d.team_avg)} (last week {_figure(d.prev_team_avg)})",
        f"Assignments due, completed: {_figure(d.completion, True)}"
        f" (last week {_figure(d.prev_completion, True)})",
    ]
    for title, people in (("Top performers", d.top), ("Needing support", d.bottom)):
        lines += ["", f"{title}:"]
        lines += [
            f"  {p.name}: {p.avg_score:.1f} (last week {_figure(p.previous)}),"
            f" {p.attempts} attempts"
            for p in people
        ] or ["  No scored attempts."]
    return "\n".join(lines) + "\n"


# -- the run ---------------------------------------------------------------------


type Send = Callable[[Digest], str]


def ses_sender(client: Any, sender: str) -> Send:
    """Sends a digest with SESv2 ``send_email`` (simple content: HTML and text)."""

    def send(d: Digest) -> str:
        reply = client.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [d.email]},
            Content={
                "Simple": {
                    "Subject": {"Data": d.subject, "Charset": "UTF-8"},
                    "Body": {
                        "Html": {"Data": render_html(d), "Charset": "UTF-8"},
                        "Text": {"Data": render_text(d), "Charset": "UTF-8"},
                    },
                }
            },
        )
        return reply.get("MessageId", "")

    return send


@dataclass
class DigestService:
    """Builds and sends the weekly digests."""

    db: Database
    dedupe: Dedupe
    send: Send

    def build(self, principal: Principal, manager: dict[str, Any], day: date) -> Digest:
        """One manager's digest for the week before ``day``'s (as the org's system)."""
        week_start, week = week_of(day)
        window = {
            "team": manager["team"],
            "week": week_start,
            "previous": week_start - timedelta(days=7),
            "next": week_start + timedelta(days=7),
        }
        members = self.db.query(principal, MEMBER_WEEKS, window)
        due = self.db.query(principal, ASSIGNMENTS_DUE, window)[0]
        scored = [
            Performer(
                name=m["name"],
                avg_score=_avg(m["score_sum"], m["scored"]) or 0.0,
                attempts=m["attempts"] or 0,
                previous=_avg(m["prev_score_sum"], m["prev_scored"]),
            )
            for m in members
            if m["scored"]
        ]
        ranked = sorted(scored, key=lambda p: (-p.avg_score, p.name))
        bottom = sorted(scored, key=lambda p: (p.avg_score, p.name))[:5]
        return Digest(
            org_id=principal.org_id,  # type: ignore[arg-type]
            manager=manager["user_id"],
            manager_name=manager["display_name"] or manager["user_id"],
            email=manager["email"] or "",
            week=week,
            week_start=week_start,
            members=len(manager["team"]),
            top=ranked[:5],
            bottom=bottom,
            team_avg=_avg(
                sum((m["score_sum"] or 0) for m in members),
                sum((m["scored"] or 0) for m in members),
            ),
            prev_team_avg=_avg(
                sum((m["prev_score_sum"] or 0) for m in members),
                sum((m["prev_scored"] or 0) for m in members),
            ),
            completion=_rate(due["done"], due["due"]),
            prev_completion=_rate(due["prev_done"], due["prev_due"]),
        )

    def _send_claimed(self, conn: Any, digest: Digest) -> str:
        # The claim travels in the pipeline ahead of this: read it back before
        # sending, so a digest already sent refuses here, not after the email.
        conn.execute("select 1").fetchone()
        return self.send(digest)

    def managers(self, principal: Principal, only: str | None = None) -> list[dict[str, Any]]:
        return self.db.query(principal, MANAGERS, {"only": only})

    def run(self, at: datetime | None = None) -> DigestOutcome:
        """Every org's managers' digests for the week before ``at``'s."""
        day = (at or datetime.now(UTC)).astimezone(UTC).date()
        outcome = DigestOutcome()
        orgs = [r["id"] for r in self.db.query(Principal.system(JOB), ORGS)]
        for org_id in orgs:
            self._org(Principal.system(JOB, org_id), day, outcome)
        if outcome.failed:
            raise DigestFailed(
                f"{outcome.failed} digest(s) failed ({', '.join(outcome.failures)});"
                f" {outcome.sent} sent"
            )
        return outcome

    def _org(self, principal: Principal, day: date, outcome: DigestOutcome) -> None:
        _, week = week_of(day)
        for manager in self.managers(principal):
            if not manager["team"]:
                outcome.skipped_no_team += 1
                continue
            if not manager["email"]:
                outcome.skipped_no_email += 1
                continue
            if manager["digest_opt_out"]:
                outcome.opted_out += 1
                continue
            key_text = f"{principal.org_id}:{manager['user_id']}:{week}"
            key = DedupeKey("digest", key_text, request_hash("digest", key_text))
            try:
                digest = self.build(principal, manager, day)
                done = self.dedupe.once(
                    principal,
                    key,
                    lambda conn, d=digest: self._send_claimed(conn, d),
                    reply_of=lambda message_id: {"message_id": message_id},
                )
            except Exception:
                logger.exception("a digest failed", extra={"manager": manager["user_id"]})
                outcome.failed += 1
                outcome.failures.append(manager["user_id"])
                continue
            if isinstance(done, Handled):
                outcome.already_sent += 1
            else:
                outcome.sent += 1
