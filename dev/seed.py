"""Demo data: three orgs with admins, managers and their teams, built-in and org
scenarios, assignments, six months of attempts whose scores improve with
practice, activity, chat sessions, saves and ratings. What can be data is in
``dev/data/seed.json`` (orgs, scenarios, names, phrases, difficulty levels).

    load_demo_data(admin_url, attempts=5000, seed=42) -> SeedSummary
    make seed SEED_ARGS="--attempts 100000 --seed 7"

Known identities (tokens and ``events/`` use them): the demo org is Clerk org
``org_demo_acme``; ``user_demo_admin`` is its first admin, ``user_demo_manager``
its first manager and the manager of ``user_demo_trainee``, whose current call
is the in-progress attempt ``DEMO_ACTIVE_ATTEMPT_ID`` and whose latest finished
one is ``DEMO_COMPLETED_ATTEMPT_ID``. Built-in scenario ids do not depend on the seed.

Scale. Every row is streamed with COPY and never kept: each trainee is
re-derived from a random.Random keyed by (seed, cohort, org, trainee) in each
table's pass, so memory does not grow with ``attempts``. About 60 attempts per
trainee: the number of trainees grows with the attempts.

Derived rows (counters, facts, dimensions, assignment completion) are written
by the database's own triggers, statement-level on scenario_attempts, so a COPY
of a million attempts goes through the same SQL as one submit from the app.

Re-running adds a cohort (new trainees and managers, ``attempts`` more
attempts) to the existing demo orgs. The same seed, ``now`` and database state
give the same rows, ids included (``now`` defaults to the current minute).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

CONTENT = json.loads((Path(__file__).parent / "data" / "seed.json").read_text(encoding="utf-8"))
DEMO_ORGS: list[dict[str, Any]] = CONTENT["orgs"]
BUILTIN_SCENARIOS: list[dict[str, Any]] = CONTENT["builtin_scenarios"]
DEMO_CLERK_ORG_ID = "org_demo_acme"
DEMO_ADMIN, DEMO_MANAGER, DEMO_TRAINEE = "user_demo_admin", "user_demo_manager", "user_demo_trainee"
DEMO_ACTIVE_ATTEMPT_ID = uuid.UUID("de30a770-0000-4000-8000-000000000001")
DEMO_COMPLETED_ATTEMPT_ID = uuid.UUID("de30a770-0000-4000-8000-000000000002")
# A pending export of the demo admin (the worker's sample events write it).
DEMO_EXPORT_ID = uuid.UUID("de30a770-0000-4000-8000-000000000003")
DEMO_EXPORT_FILTERS = {"from": "2026-01-01", "to": "2026-12-31"}
# The demo trainee's chat session the sample events read and write.
DEMO_CHAT_SESSION_ID = uuid.UUID("de30a770-0000-4000-8000-0000000c4a70")

DEFAULT_ATTEMPTS, DEFAULT_SEED = 5_000, 42
ATTEMPTS_PER_TRAINEE, MIN_TRAINEES_PER_ORG, TEAM_SIZE = 60, 6, 8
DAY, HOUR = 86_400, 3_600
WINDOW = 182 * DAY
# Each attempt gets a slot this long before the next may start: a trainee's calls
# never overlap, so the first completed attempt of an assignment is unambiguous.
SLOT = 30 * 60
# Event-level KPIs (fact_kpi_events) exist for the last 90 days' calls, as if the
# pipeline had been switched on then; older calls carry aggregate KPIs only.
EVENTS_DAYS = 90
LEVELS = list(CONTENT["difficulties"])  # beginner, intermediate, advanced
_NAMESPACE = uuid.UUID("6f1d9c52-3b7e-4c1a-9a55-2d0c7e4b8f10")
# The demo org's id where the seed created it (its queue messages name it).
DEMO_ORG_ID = uuid.uuid5(_NAMESPACE, DEMO_CLERK_ORG_ID)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Standard normal quantiles at 4,096 probabilities: a draw is a lookup by 12
# random bits, ~10x cheaper than random.gauss, and an attempt needs a dozen.
_Z = tuple(NormalDist().inv_cdf((k + 0.5) / 4096) for k in range(4096))
_CRITERIA = CONTENT["criteria"]
# Formatted once: json.dumps in the per-attempt loop would be a quarter of its time.
_FEEDBACK = {
    (b, w): (
        f"{CONTENT['strength'][best]} {CONTENT['improve'][worst]}",
        json.dumps({"strengths": [best], "improvements": [worst], "rubric_version": 2}),
    )
    for b, best in enumerate(_CRITERIA)
    for w, worst in enumerate(_CRITERIA)
}
_BREAKDOWN = "{" + ",".join(f'"{c}":%d' for c in _CRITERIA) + "}"
_DRAFT = {key: json.dumps(value) for key, value in CONTENT["draft"].items()}

# Columns each table is loaded with, in load order (foreign keys).
COLUMNS = {
    table: tuple(columns.split())
    for table, columns in {
        "orgs": "id clerk_org_id name slug created_at updated_at",
        "org_members": "org_id user_id role manager_user_id display_name email"
        " created_at updated_at",
        "scenarios": "id org_id title description role difficulty category instructions context"
        " expected_outcome learning_goal learning_objectives persona comfort_indicators"
        " difficulty_rating cefr_level cefr_recommendation created_by_user_id visibility"
        " is_active created_at updated_at",
        "assignments": "id org_id scenario_id assignee_user_id assigned_by_user_id due_at"
        " required created_at updated_at",
        "user_scenario_progress": "org_id user_id scenario_id is_saved saved_at user_rating"
        " user_notes created_at updated_at",
        "chat_sessions": "id org_id user_id title scenario_progress scenario_id"
        " scenario_started_at scenario_completed_at created_at updated_at",
        "scenario_attempts": "id org_id clerk_user_id scenario_id assignment_id started_at"
        " ended_at duration_seconds score score_breakdown kpis transcript_path recording_path"
        " feedback_text feedback_json manager_comments status metadata vapi_call_id"
        " created_at updated_at version answers auto_save_data submitted_at"
        " last_activity_at scored_by",
    }.items()
}
# Tables with rows per trainee (re-derived in each of their passes).
_PER_TRAINEE = ("org_members", "assignments", "user_scenario_progress", "chat_sessions")


class SeedError(RuntimeError):
    """The demo data cannot be loaded into this database as it stands."""


def _scenario_id(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"scenario/{key}"))


BUILTIN_SCENARIO_IDS = {s["key"]: uuid.UUID(_scenario_id(s["key"])) for s in BUILTIN_SCENARIOS}


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _iso(epoch: int) -> str:
    return _ts(epoch).isoformat().replace("+00:00", "Z")


def _uuid(rng: random.Random) -> str:
    # A version-4 UUID from the seeded stream, formatted directly (twice as fast
    # as uuid.UUID, and this runs twice per attempt).
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


# ---------------------------------------------------------------------------
# The plan: orgs, their scenarios and sizes, derived from the seed
# ---------------------------------------------------------------------------


class Pick(NamedTuple):
    """A scenario trainees can practise."""

    id: str
    level: int  # index into LEVELS
    title: str


@dataclass
class Org:
    """One demo org as this load sees it."""

    index: int
    spec: dict[str, Any]
    id: str
    created: int
    attempts: int
    trainees: int
    new: bool  # created by this load (with its admins and scenarios)
    admins: list[str] = field(default_factory=list)
    picks: list[Pick] = field(default_factory=list)
    by_level: list[list[Pick]] = field(default_factory=list)


@dataclass
class Plan:
    """Seed, cohort (0 for the first load, then one per load), clock and orgs."""

    seed: int
    cohort: int
    now: int
    orgs: list[Org] = field(default_factory=list)

    def rng(self, org: Org, kind: str, index: int) -> random.Random:
        """An independent, reproducible random stream for one entity."""
        # A str seed is hashed with SHA-512: stable across runs and processes.
        return random.Random(f"{self.seed}:{self.cohort}:{org.index}:{kind}:{index}")


def _plan(conn: psycopg.Connection, seed: int, attempts: int, now: int) -> Plan:
    """New orgs on an empty database, else a new cohort for the existing demo orgs."""
    wanted = [o["clerk_org_id"] for o in DEMO_ORGS]
    existing = dict(
        conn.execute(
            "select clerk_org_id, id::text from orgs where clerk_org_id = any(%s)", [wanted]
        ).fetchall()
    )
    if existing and len(existing) != len(DEMO_ORGS):
        missing = ", ".join(sorted(set(wanted) - set(existing)))
        raise SeedError(
            f"partial demo data: {missing} missing; reset the database (make dev-reset) and seed"
        )
    # Members already in the demo orgs key the new cohort's random streams, so a
    # second load never regenerates the first one's ids.
    cohort = conn.execute(
        "select count(*) from org_members where org_id = any(%s::uuid[])",
        [list(existing.values())],
    ).fetchone()[0]
    plan = Plan(seed, cohort, now)
    remaining = attempts
    for index, spec in enumerate(DEMO_ORGS):
        share = remaining if index == len(DEMO_ORGS) - 1 else int(attempts * spec["share"])
        remaining -= share
        org = Org(
            index,
            spec,
            existing.get(spec["clerk_org_id"]) or str(uuid.uuid5(_NAMESPACE, spec["clerk_org_id"])),
            now - spec["age_days"] * DAY,
            share,
            max(MIN_TRAINEES_PER_ORG, math.ceil(share / ATTEMPTS_PER_TRAINEE)),
            not existing,
        )
        if org.new:
            org.admins = [_person(plan, org, "admin", k)[0] for k in range(spec["admins"])]
            org.picks = [
                Pick(_scenario_id(s["key"]), LEVELS.index(s["difficulty"]), s["title"])
                for s in (*BUILTIN_SCENARIOS, *CONTENT["org_scenarios"][spec["slug"]])
                if s.get("visibility") != "private"
            ]
        else:
            org.admins = [
                user
                for (user,) in conn.execute(
                    "select user_id from org_members where org_id = %s and role = 'admin'"
                    " and deleted_at is null order by created_at, user_id",
                    [org.id],
                )
            ]
            org.picks = [
                Pick(id_, LEVELS.index(level), title)
                for id_, level, title in conn.execute(
                    "select id::text, difficulty::text, title from scenarios"
                    " where (org_id is null or org_id = %s) and is_active"
                    " and visibility <> 'private' order by org_id nulls first, created_at, id",
                    [org.id],
                )
            ]
            if not org.admins or not org.picks:
                raise SeedError(f"demo org {spec['clerk_org_id']} has no admin or no scenario left")
        org.by_level = [[p for p in org.picks if p.level == d] or org.picks for d in range(3)]
        plan.orgs.append(org)
    return plan


# ---------------------------------------------------------------------------
# People and the rows of one org and of one trainee
# ---------------------------------------------------------------------------


def _person(plan: Plan, org: Org, role: str, k: int) -> tuple[str, str, str]:
    """(user id, name, email) of the ``k``-th admin, manager or trainee of this cohort."""
    domain = org.spec["domain"]
    if plan.cohort == 0 and org.index == 0 and k == 0:
        user, name = CONTENT["demo_people"][role]
        return user, name, f"{name.lower().replace(' ', '.')}@{domain}"
    rng = plan.rng(org, role, k)
    first, last = rng.choice(CONTENT["first_names"]), rng.choice(CONTENT["last_names"])
    local = f"{first}.{last}.{role[0]}{plan.cohort}.{k}".lower().replace("ü", "u")
    return "user_" + "".join(rng.choices(_B62, k=27)), f"{first} {last}", f"{local}@{domain}"


def _member(org: Org, person: tuple[str, str, str], role: str, manager: Any, at: int) -> dict:
    user, name, email = person
    return {"org_id": org.id, "user_id": user, "role": role, "manager_user_id": manager,
            "display_name": name, "email": email, "created_at": at}  # fmt: skip


def _scenario(s: dict[str, Any], org_id: str | None, author: str | None, at: int) -> dict:
    row = {**CONTENT["scenario_defaults"], **CONTENT["difficulties"][s["difficulty"]], **s}
    row |= {"id": _scenario_id(s["key"]), "org_id": org_id, "created_by_user_id": author}
    return {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()} | {
        "created_at": at
    }


def _org_rows(plan: Plan, org: Org, table: str, builtins: bool) -> Iterator[dict]:
    """The org's own rows of ``table``: the org, admins, managers, scenarios."""
    if table == "orgs" and org.new:
        yield {"id": org.id, "created_at": org.created} | org.spec
    elif table == "scenarios" and org.new:
        if builtins and org.index == 0:
            for s in BUILTIN_SCENARIOS:
                yield _scenario(s, None, None, org.created - DAY)
        for n, s in enumerate(CONTENT["org_scenarios"][org.spec["slug"]]):
            yield _scenario(s, org.id, org.admins[0], org.created + (n + 2) * DAY)
    elif table == "org_members":
        # Admins, then managers, then (in _trainee) the trainees they manage.
        for k in range(org.spec["admins"] if org.new else 0):
            person = _person(plan, org, "admin", k)
            yield _member(org, person, "admin", None, org.created + k * HOUR)
        first = org.created + DAY if plan.cohort == 0 else plan.now - 190 * DAY
        for j in range(math.ceil(org.trainees / TEAM_SIZE)):
            person = _person(plan, org, "manager", j)
            yield _member(org, person, "manager", org.admins[0], first + j * HOUR)


@dataclass(slots=True)
class Assignment:
    """An assignment, and when (if ever) the trainee turns to it."""

    id: str
    pick: Pick
    created: int
    due: int
    target: int | None  # None: never practised, or practised already


@dataclass
class Trainee:
    """A trainee's profile and small-table rows; ``rng`` continues into the attempts."""

    user: str
    joined: int
    attempts: int
    active: bool  # the last attempt is a call in progress
    fresh: bool  # the last attempt just ended and awaits its score
    profile: dict[str, Any]
    rng: random.Random
    assignments: list[Assignment] = field(default_factory=list)
    rows: dict[str, list[dict]] = field(default_factory=lambda: {t: [] for t in _PER_TRAINEE})


def _attempt_count(plan: Plan, org: Org, i: int) -> int:
    """The org's attempts split evenly, then moved within pairs of trainees so
    some practise far more than others while the total stays exact."""
    base, extra = divmod(org.attempts, org.trainees)
    mine, partner = base + (i < extra), i ^ 1
    if partner >= org.trainees:
        return mine
    shift = plan.rng(org, "pair", i // 2).randint(0, int(min(mine, base + (partner < extra)) * 0.6))
    return mine + shift if i % 2 == 0 else mine - shift  # the demo trainee (0) practises more


def _trainee(plan: Plan, org: Org, i: int) -> Trainee:
    """Trainee ``i`` of ``org`` in this cohort, from its own random stream."""
    rng = plan.rng(org, "history", i)
    rand, gauss = rng.random, rng.gauss
    demo = plan.cohort == 0 and org.index == 0 and i == 0
    person = _person(plan, org, "trainee", i)
    user, now = person[0], plan.now
    joined = now - WINDOW + (DAY if demo else 2 * DAY + int(rand() * 0.55 * WINDOW))
    manager = _person(plan, org, "manager", i // TEAM_SIZE)[0]
    count = _attempt_count(plan, org, i)
    active = count > 0 and (demo or rand() < 0.05)
    fresh = count > 1 and not active and rand() < 0.04
    profile = {"skill": min(max(gauss(50, 9), 25.0), 75.0), "gain": rng.uniform(12, 32),
               "rate": rng.uniform(0.04, 0.14), "noise": rng.uniform(4, 8),
               "talk_bias": gauss(0, 0.04),
               "criteria_bias": [gauss(0, 5) for _ in _CRITERIA]}  # fmt: skip
    t = Trainee(user, joined, count, active, fresh, profile, rng)
    t.rows["org_members"].append(_member(org, person, "trainee", manager, joined))
    mine = {"org_id": org.id, "user_id": user}

    def moment(after: int, margin: int = 0) -> int:
        return after + int(rand() * (now - after - margin))

    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        created = moment(joined + DAY)
        a = Assignment(_uuid(rng), rng.choice(org.picks), created, 0, None)
        a.due = created + rng.randint(5, 21) * DAY
        row = {"id": a.id, "org_id": org.id, "scenario_id": a.pick.id, "assignee_user_id": user,
               "assigned_by_user_id": manager if rand() < 0.8 else org.admins[0],
               "due_at": a.due, "required": rand() < 0.7, "created_at": created}  # fmt: skip
        if rand() < 0.75:
            a.target = created + int(rand() * 1.2 * (a.due - created))
        t.assignments.append(a)
        t.rows["assignments"].append(row)
    for pick in rng.sample(org.picks, min(len(org.picks), rng.choice((0, 0, 1, 2, 3)))):
        saved = rand() < 0.7
        rating = rng.choices((None, 2, 3, 4, 5), (4, 1, 2, 4, 3))[0] or (None if saved else 4)
        at = moment(joined)
        notes = rng.choice(CONTENT["notes"]) if rand() < 0.15 else None
        t.rows["user_scenario_progress"].append(mine | {
            "scenario_id": pick.id, "is_saved": saved, "saved_at": at if saved else None,
            "user_rating": rating, "user_notes": notes, "created_at": at})  # fmt: skip
    for _ in range(rng.choice((1, 1, 2)) if rand() < 0.3 else 0):
        started = moment(joined, HOUR)
        pick = rng.choice(org.picks) if rand() < 0.85 else None
        steps = rng.randint(0, len(CONTENT["prep_steps"]))
        chat = _chat(pick, started, steps, rng.randint(20, 90) * 60)
        t.rows["chat_sessions"].append(mine | {"id": _uuid(rng)} | chat)
    if demo:
        # A session of fixed id, without progress yet (no draw from the stream).
        chat = _chat(None, joined + DAY, 0, 0)
        t.rows["chat_sessions"].append(mine | {"id": str(DEMO_CHAT_SESSION_ID)} | chat)
    return t


def _chat(pick: Pick | None, started: int, done: int, minutes: int) -> dict[str, Any]:
    """A chat session, with the prep progress the front end tracks when about a scenario."""
    if pick is None:
        return {"title": "Objection ideas", "created_at": started, "updated_at": started + 900}
    steps = CONTENT["prep_steps"]
    completed = started + minutes if done == len(steps) else None
    last = completed or started + (done + 1) * 7 * 60
    for_pick = [
        step
        | {
            "actions": [
                a | {"prompt": a["prompt"].format(title=pick.title)} for a in step["actions"]
            ]
        }
        for step in steps
    ]
    progress = {
        "scenario": {"id": pick.id, "title": pick.title, "steps": for_pick,
                     "description": f"Guided preparation for '{pick.title}'"},
        "currentStep": min(done, len(steps) - 1),
        "completedSteps": list(range(done)),
        "triggeredActions": {f"step_{n}_action_0": n < done for n in range(len(steps))},
        "startedAt": _iso(started),
        "lastUpdatedAt": _iso(last),
    }  # fmt: skip
    return {"title": f"Prep: {pick.title}", "scenario_progress": json.dumps(progress),
            "scenario_id": pick.id, "scenario_started_at": started,
            "scenario_completed_at": completed, "created_at": started,
            "updated_at": last}  # fmt: skip


# ---------------------------------------------------------------------------
# Attempts: six months of practice per trainee, scores improving
# ---------------------------------------------------------------------------


def _start_times(t: Trainee, now: int) -> list[int]:
    """Strictly increasing starts, a slot apart, in the trainee's window; a live
    or just-finished last call happens in the last two hours."""
    rand = t.rng.random
    tail = int(t.active or t.fresh)
    history = t.attempts - tail
    first = t.joined + HOUR
    room = max(now - 3 * HOUR - first - history * SLOT, 0)
    times = [
        first + int(u * room) + k * SLOT
        for k, u in enumerate(sorted(rand() for _ in range(history)))
    ]
    if tail:
        ago = (5 + int(rand() * 96)) * 60 if t.active else (20 + int(rand() * 91)) * 60
        times.append(max(now - ago, times[-1] + SLOT if times else first))
    return times


def _choose(org: Org, t: Trainee, started: int, frac: float) -> tuple[Pick, str | None]:
    """The assignment whose moment has come, else a scenario by difficulty (beginner
    ones early in a trainee's history, advanced ones later); and its assignment."""
    for a in t.assignments:
        if a.target is not None and started >= a.target:
            a.target = None
            return a.pick, a.id
    rand = t.rng.random
    easy, hard = 1.0 - 0.7 * frac, 0.1 + 0.8 * frac
    r = rand() * (easy + 0.6 + hard)
    group = org.by_level[0 if r < easy else 1 if r < easy + 0.6 else 2]
    pick = group[int(rand() * len(group))]
    # Practice of an assigned scenario while it is open counts towards it.
    found = (
        a.id for a in t.assignments if a.pick is pick and a.created <= started <= a.due + 2 * DAY
    )
    return pick, next(found, None)


def _kpi_events(rand: Any, ms: int, curve: float, interruptions: int) -> str:
    """kpis.events: the notable moments of a call in time order (fact_kpi_events)."""

    def at(after: int) -> int:
        return after + int(rand() * (ms - after))

    def objection() -> tuple[int, str]:
        handled = "true" if rand() < 0.4 + 0.5 * curve else "false"
        return at(30_000), f'"objection_raised","event_value":{{"handled":{handled}}}'

    events = [objection()] + ([objection()] if rand() < 0.35 else [])
    events += [
        (at(5_000), '"interruption","event_value":{"by":"trainee"}') for _ in range(interruptions)
    ]
    if rand() < 0.35:
        keyword = CONTENT["keywords"][int(rand() * len(CONTENT["keywords"]))]
        events.append((at(10_000), f'"keyword_mentioned","event_value":{{"keyword":"{keyword}"}}'))
    if rand() < 0.3 - 0.2 * curve:
        pause = 6 + int(rand() * 9)
        events.append((at(10_000), f'"long_pause","event_value":{{"seconds":{pause}}}'))
    items = ",".join(f'{{"event_type":{body},"timestamp_ms":{t}}}' for t, body in sorted(events))
    return f"[{items}]"


def _scored(t: Trainee, pick: Pick, j: int, row: dict, events: bool) -> dict[str, Any]:
    """A completed call with Vapi's report in: score improving with practice, KPIs, feedback."""
    rand, bits, p = t.rng.random, t.rng.getrandbits, t.profile
    level = CONTENT["difficulties"][LEVELS[pick.level]]
    duration = min(max(int(level["call_seconds"] * (0.65 + 0.7 * rand())), 90), 25 * 60)
    ms = duration * 1000
    # The learning curve: base skill plus a gain that saturates with the attempt number.
    curve = 1.0 - math.exp(-p["rate"] * j)
    raw = p["skill"] + p["gain"] * curve + level["score_offset"] + p["noise"] * _Z[bits(12)]
    score = round(min(max(raw, 0.0), 100.0), 1)
    marks = [min(max(round(score + b + 6 * _Z[bits(12)]), 0), 100) for b in p["criteria_bias"]]
    speech = int(ms * (0.82 + 0.1 * rand()))
    ratio = min(max(0.66 - 0.18 * curve + p["talk_bias"] + 0.04 * _Z[bits(12)], 0.25), 0.9)
    talk = int(speech * ratio)
    interruptions = max(0, round(2.4 - 1.8 * curve + 0.9 * _Z[bits(12)]))
    fillers = max(0, round((12 - 8 * curve + 2.5 * _Z[bits(12)]) * duration / 480))
    questions = max(0, round(3 + 7 * curve + 1.5 * _Z[bits(12)]))
    wpm = round(160 - 12 * curve + 9 * _Z[bits(12)])
    kpis = (
        f'{{"talk_ms":{talk},"listen_ms":{speech - talk},"talk_ratio":{ratio:.3f},'
        f'"filler_words":{fillers},"questions_asked":{questions},"interruptions":{interruptions},'
        f'"words_per_minute":{wpm},"longest_monologue_ms":{int(talk * (0.08 + 0.17 * rand()))}'
    )
    if events:
        kpis += ',"events":' + _kpi_events(rand, ms, curve, interruptions)
    folder = f"{row['org_id']}/{row['id']}"
    recording = f"recordings/{folder}/{row['vapi_call_id']}.webm" if rand() < 0.6 else None
    text, details = _FEEDBACK[marks.index(max(marks)), marks.index(min(marks))]
    comments = CONTENT["manager_comments"]
    comment = comments[int(rand() * len(comments))] if rand() < 0.05 else None
    ended = row["started_at"] + duration
    return {"ended_at": ended, "duration_seconds": duration, "score": score,
            "score_breakdown": _BREAKDOWN % tuple(marks), "kpis": kpis + "}",
            "transcript_path": f"transcripts/{folder}/transcript.json",
            "recording_path": recording, "feedback_text": text, "feedback_json": details,
            "manager_comments": comment, "submitted_at": ended, "last_activity_at": ended,
            "version": 2 + int(rand() * 3), "scored_by": "vapi"}  # fmt: skip


def _unscored(t: Trainee, row: dict, now: int, pending: bool) -> dict[str, Any]:
    """A call without a score: live (with an autosaved draft), just submitted
    (Vapi's report not in yet), or abandoned or failed (short, sometimes untimed)."""
    rand, status, started = t.rng.random, row["status"], row["started_at"]
    if status == "in_progress":
        at = min(started + (1 + int(rand() * 4)) * 60, now)
        return {"last_activity_at": at, "version": 1 + int(rand() * 3), **_DRAFT}
    if pending:
        ended = started + (4 + int(rand() * 12)) * 60
        return {"ended_at": ended, "submitted_at": ended, "last_activity_at": ended, "version": 2}
    duration = kpis = None
    if status == "abandoned" or rand() < 0.5:
        duration = 20 + int(rand() * 221) if status == "abandoned" else 3 + int(rand() * 58)
        kpis = f'{{"talk_ms":{duration * 500},"listen_ms":{duration * 500}}}'
    ended = started + (duration or 3 + int(rand() * 28))
    return {"ended_at": ended, "duration_seconds": duration, "kpis": kpis,
            "last_activity_at": ended, "version": 1 + int(rand() * 2)}  # fmt: skip


def _attempts(plan: Plan, org: Org, t: Trainee, statuses: Counter) -> Iterator[dict]:
    """One trainee's attempts in start order."""
    rand, n = t.rng.random, t.attempts
    events_from = plan.now - EVENTS_DAYS * DAY
    demo_tail = plan.cohort == 0 and t.user == DEMO_TRAINEE and t.active
    metadata = [
        json.dumps({"source": "demo_seed", "cohort": plan.cohort, "channel": channel})
        for channel in ("web", "phone")
    ]
    for j, started in enumerate(_start_times(t, plan.now)):
        pick, assignment = _choose(org, t, started, j / (n - 1) if n > 1 else 1.0)
        last = j == n - 1
        r = rand()
        abandon = 0.025 + 0.12 - 0.05 * j / n  # abandoned less often with practice
        status = "failed" if r < 0.025 else "abandoned" if r < abandon else "completed"
        if last and (t.active or t.fresh):
            status = "in_progress" if t.active else "completed"
        if demo_tail and j == n - 2:
            status = "completed"
        row = {"id": _uuid(t.rng), "org_id": org.id, "clerk_user_id": t.user,
               "scenario_id": pick.id, "assignment_id": assignment, "started_at": started,
               "created_at": started, "status": status, "metadata": metadata[rand() < 0.2],
               "vapi_call_id": _uuid(t.rng), "answers": "{}", "auto_save_data": "{}"}  # fmt: skip
        if status == "completed" and not (last and t.fresh):
            row |= _scored(t, pick, j, row, started >= events_from)
        else:
            row |= _unscored(t, row, plan.now, pending=status == "completed")
        if demo_tail and j >= n - 2:
            # The demo trainee's current call and latest result have fixed ids;
            # the sample events save the current one with If-Match: "1".
            row["id"] = str(DEMO_ACTIVE_ATTEMPT_ID if last else DEMO_COMPLETED_ATTEMPT_ID)
            row["version"] = 1 if last else row["version"]
        statuses[status] += 1
        yield row


def _rows(plan: Plan, table: str, statuses: Counter, builtins: bool = False) -> Iterator[dict]:
    """Every row of ``table`` this load inserts, org by org, trainee by trainee."""
    for org in plan.orgs:
        yield from _org_rows(plan, org, table, builtins)
        if table in _PER_TRAINEE or table == "scenario_attempts":
            for i in range(org.trainees):
                t = _trainee(plan, org, i)
                if table == "scenario_attempts":
                    yield from _attempts(plan, org, t, statuses)
                else:
                    yield from t.rows[table]


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

# Activity for about 5% of this load's attempts, plus every call in progress and
# every call of the demo trainee, written from the attempts by SQL.
_ACTIVITY_SQL = """
insert into attempt_activity
       (org_id, attempt_id, owner_user_id, user_id, event_type, payload, occurred_at, created_at)
select a.org_id, a.id, a.clerk_user_id, a.clerk_user_id, e.event_type, e.payload, e.at, e.at
  from scenario_attempts a
  cross join lateral (values
      ('call_started', jsonb_build_object('channel', a.metadata ->> 'channel'), a.started_at),
      ('call_connected', jsonb_build_object('vapi_call_id', a.vapi_call_id),
       a.started_at + interval '3 seconds'),
      ('autosave', jsonb_build_object('version', a.version),
       coalesce(a.started_at + (a.ended_at - a.started_at) / 2, a.last_activity_at)),
      ('call_ended', jsonb_build_object('status', a.status, 'duration', a.duration_seconds),
       a.ended_at)
  ) as e(event_type, payload, at)
 where a.xmin = pg_current_xact_id()::xid
   and e.at is not null
   and (get_byte(uuid_send(a.id), 15) < 13 or a.status = 'in_progress'
        or a.clerk_user_id = %s)
"""
# A load that more than doubles the big tables drops their secondary indexes and
# rebuilds them after: one sort per index beats a million random insertions into
# each (a third of the load's time). Primary keys stay: ON CONFLICT needs them.
_SECONDARY_INDEXES = """
select i.relname, pg_get_indexdef(x.indexrelid)
  from pg_index x
  join pg_class t on t.oid = x.indrelid
  join pg_class i on i.oid = x.indexrelid
 where t.relnamespace = 'public'::regnamespace
   and t.relname in ('scenario_attempts', 'fact_scenario_attempts', 'fact_kpi_events')
   and not x.indisprimary
   and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid)
 order by i.relname
"""


@dataclass
class SeedSummary:
    """What one load inserted (rows by table), and how long each phase took."""

    cohort: int
    rows: dict[str, int] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    refresh: str | None = None

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as phase ``name``."""
        began = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - began

    def __str__(self) -> str:
        n = self.rows
        statuses = ", ".join(f"{k:,} {s}" for s, k in sorted(self.statuses.items()))
        what = (
            f"{len(DEMO_ORGS)} orgs ({DEMO_CLERK_ORG_ID}: {DEMO_ADMIN}, {DEMO_MANAGER}, "
            f"{DEMO_TRAINEE})"
            if n.get("orgs")
            else f"a new cohort added to the {len(DEMO_ORGS)} demo orgs"
        )
        return (
            f"{what}, {n['org_members']:,} members, {n['scenarios']} scenarios, "
            f"{n['assignments']:,} assignments, {n['scenario_attempts']:,} attempts ({statuses}), "
            f"{n['attempt_activity']:,} activity events, {n['chat_sessions']:,} chat sessions "
            f"in {sum(self.timings.values()):.1f} s"
        )


def _copy(cur: psycopg.Cursor, table: str, rows: Iterable[dict], total: int = 0) -> int:
    """COPY ``rows`` into ``table`` (psycopg sends the buffer as it fills, so neither
    side holds more than a chunk). Rows hold times as epoch seconds; ``updated_at``
    defaults to the last activity or the creation. With ``total``, progress on stderr."""
    columns = COLUMNS[table]
    stamps = [k for k, column in enumerate(columns) if column.endswith("_at")]
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    began, done, tenth = time.perf_counter(), 0, 1
    with cur.copy(statement) as copy:
        for done, row in enumerate(rows, 1):
            row.setdefault("updated_at", row.get("last_activity_at") or row["created_at"])
            values = list(map(row.get, columns))
            for k in stamps:
                if values[k] is not None:
                    values[k] = _ts(values[k])
            copy.write_row(values)
            if total and done * 10 >= tenth * total:
                tenth = done * 10 // total + 1  # a line per tenth keeps logs readable
                elapsed = max(time.perf_counter() - began, 1e-9)
                print(
                    f"[seed] attempts {done:>11,}/{total:,} {100 * done / total:5.1f}%"
                    f" {done / elapsed:>9,.0f} rows/s {elapsed:6.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return done


def load_demo_data(
    admin_url: str,
    attempts: int | None = None,
    *,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
    now: datetime | None = None,
) -> SeedSummary:
    """Load the demo orgs, or a new cohort into them, with ``attempts`` attempts."""
    attempts = DEFAULT_ATTEMPTS if attempts is None else attempts
    if attempts < 0:
        raise SeedError("attempts must be >= 0")
    if not isinstance(seed, int):  # random.Random takes anything, e.g. a module by mistake
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    clock = int(time.time()) // 60 * 60 if now is None else int(now.timestamp())

    def say(text: str) -> None:
        if progress:
            print(f"[seed] {text}", file=sys.stderr, flush=True)

    with psycopg.connect(admin_url) as conn:
        # Two seeders at once would both see "no demo orgs" and collide.
        conn.execute("select pg_advisory_xact_lock(hashtextextended('dev.seed', 0))")
        plan = _plan(conn, seed, attempts, clock)
        summary, cur = SeedSummary(plan.cohort), conn.cursor()
        builtins = (
            plan.orgs[0].new
            and not conn.execute(
                "select exists (select 1 from scenarios where id = %s)",
                [_scenario_id(BUILTIN_SCENARIOS[0]["key"])],
            ).fetchone()[0]
        )
        what = "creating the demo orgs" if plan.orgs[0].new else "adding a cohort to the demo orgs"
        say(f"{what}: {sum(o.trainees for o in plan.orgs):,} trainees, {attempts:,} attempts")
        existing = conn.execute("select count(*) from scenario_attempts").fetchone()[0]
        deferred = (
            conn.execute(_SECONDARY_INDEXES).fetchall() if attempts > max(existing, 1000) else []
        )
        for name, _ in deferred:
            conn.execute(sql.SQL("drop index {}").format(sql.Identifier("public", name)))
        with summary.phase("members, scenarios, assignments"):
            for table in COLUMNS:
                if table != "scenario_attempts":
                    rows = _rows(plan, table, summary.statuses, builtins)
                    summary.rows[table] = _copy(cur, table, rows)
        with summary.phase("attempts (COPY and triggers)"):
            rows = _rows(plan, "scenario_attempts", summary.statuses)
            summary.rows["scenario_attempts"] = _copy(
                cur, "scenario_attempts", rows, progress and attempts
            )
        with summary.phase("activity"):
            summary.rows["attempt_activity"] = cur.execute(_ACTIVITY_SQL, [DEMO_TRAINEE]).rowcount
        cur.execute(
            "insert into exports (id, org_id, requested_by, requester_role, kind, filters)"
            " select %s, id, %s, 'admin', 'attempts', %s from orgs where clerk_org_id = %s"
            " on conflict (id) do nothing",
            [DEMO_EXPORT_ID, DEMO_ADMIN, Jsonb(DEMO_EXPORT_FILTERS), DEMO_CLERK_ORG_ID],
        )
        if deferred:
            say(f"rebuilding {len(deferred)} indexes")
            with summary.phase("indexes"):
                conn.execute("set local maintenance_work_mem = '256MB'")
                for _, definition in deferred:
                    conn.execute(sql.SQL(definition))  # pg_get_indexdef output, not input
    # After the commit: the planner needs the new sizes at once, and the
    # reporting views are refreshed from the facts just written.
    with psycopg.connect(admin_url, autocommit=True) as conn:
        say("analyze and refresh the reporting views")
        with summary.phase("analyze"):
            tables = [
                *COLUMNS,
                "attempt_activity",
                "dim_users",
                "dim_scenarios",
                "scenario_metadata",
                "fact_scenario_attempts",
                "fact_kpi_events",
            ]
            conn.execute(
                sql.SQL("analyze {}").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
            )
        with summary.phase("refresh views"):
            # A full rebuild: the change log of a bulk load names nearly every slice.
            status, error = conn.execute(
                "select status, error"
                " from refresh_reporting_views('manual', 'dev.seed', full => true)"
            ).fetchone()
        summary.refresh = status if error is None else f"{status}: {error}"
    return summary
