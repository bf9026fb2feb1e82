"""Demo data: three orgs with admins, managers and their teams, built-in and
org scenarios, assignments, six months of attempts whose scores improve with
practice, activity logs, chat sessions with scenario progress, saves and ratings.
Scenario texts, names and feedback phrases are in ``dev/data/seed.json``.

    load_demo_data(admin_url, attempts=5000, seed=42) -> SeedSummary
    make seed SEED_ARGS="--attempts 100000 --seed 7"   (python -m dev seed)

Known identities (for tokens and sample events): the demo org is Clerk org
``org_demo_acme``; ``user_demo_admin`` is its first admin, ``user_demo_manager``
its first manager and the manager of ``user_demo_trainee``, whose latest
finished attempt is ``DEMO_COMPLETED_ATTEMPT_ID`` and whose current call is the
in-progress attempt ``DEMO_ACTIVE_ATTEMPT_ID``. Built-in scenario ids are uuid5
values that do not depend on the seed (``BUILTIN_SCENARIO_IDS``).

Scale. Rows are generated lazily and streamed with COPY, so memory does not
grow with the number of attempts: every trainee's profile and history is
re-derived from a random.Random keyed by (seed, cohort, org, trainee), which
lets each table's COPY pass regenerate exactly the rows it needs. About 60
attempts per trainee over six months: the number of trainees grows with the
attempts, never the attempts per trainee.

Derived rows (counters, facts, dimensions, assignment completion) are written
by the database's own triggers: those on scenario_attempts are statement-level
and set-based, so a COPY of a million attempts goes through the same SQL as one
submit from the app.

Re-running. The first call creates the demo orgs; a call on a database that
already has them adds a new cohort (new trainees with their own managers,
assignments and ``attempts`` more attempts) to the same orgs. ``make dev``
only seeds an empty database; ``make seed`` grows the demo data.

Determinism. The same seed, ``now`` and database state give the same rows,
ids included (``now`` defaults to the current minute).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any

import psycopg
from psycopg import sql

DEMO_CLERK_ORG_ID = "org_demo_acme"
DEMO_ADMIN = "user_demo_admin"
DEMO_MANAGER = "user_demo_manager"
DEMO_TRAINEE = "user_demo_trainee"
DEMO_ACTIVE_ATTEMPT_ID = uuid.UUID("de30a770-0000-4000-8000-000000000001")
DEMO_COMPLETED_ATTEMPT_ID = uuid.UUID("de30a770-0000-4000-8000-000000000002")

DEFAULT_ATTEMPTS = 5_000
DEFAULT_SEED = 42
ATTEMPTS_PER_TRAINEE = 60
MIN_TRAINEES_PER_ORG = 6
TEAM_SIZE = 8
WINDOW_DAYS = 182
DAY = 86_400
HOUR = 3_600
# Every attempt gets a slot this long before the next may start, so calls of
# one trainee never overlap and started_at is strictly increasing per trainee
# (the first completed attempt of an assignment is then unambiguous).
SLOT_SECONDS = 30 * 60
MAX_CALL_SECONDS = 25 * 60

_NAMESPACE = uuid.UUID("6f1d9c52-3b7e-4c1a-9a55-2d0c7e4b8f10")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIFFICULTIES = ("beginner", "intermediate", "advanced")
_EMPTY = "{}"
_VARIANT = "89ab"
# Standard normal quantiles at 4,096 evenly spaced probabilities: a draw is one
# table lookup by 12 random bits, ~10x cheaper than random.gauss, and the
# attempt generator needs a dozen per attempt.
_Z = tuple(NormalDist().inv_cdf((k + 0.5) / 4096) for k in range(4096))


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


class SeedError(RuntimeError):
    """The demo data cannot be loaded into this database as it stands."""


# ---------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------


CONTENT = json.loads((Path(__file__).parent / "data" / "seed.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class DemoOrg:
    """One demo tenant."""

    clerk_org_id: str
    name: str
    slug: str
    domain: str
    share: float  # of the attempts, hence of the trainees
    admins: int
    age_days: int


DEMO_ORGS = tuple(DemoOrg(**org) for org in CONTENT["orgs"])
BUILTIN_SCENARIOS: list[dict[str, Any]] = CONTENT["builtin_scenarios"]
ORG_SCENARIOS: dict[str, list[dict[str, Any]]] = CONTENT["org_scenarios"]


def _scenario_id(key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"scenario/{key}")


BUILTIN_SCENARIO_IDS = {s["key"]: _scenario_id(s["key"]) for s in BUILTIN_SCENARIOS}
_FIRST_NAMES, _LAST_NAMES = CONTENT["first_names"], CONTENT["last_names"]
_CRITERIA, _STRENGTH, _IMPROVE = CONTENT["criteria"], CONTENT["strength"], CONTENT["improve"]
_MANAGER_COMMENTS, _KEYWORDS = CONTENT["manager_comments"], CONTENT["keywords"]
_NOTES, _STEPS = CONTENT["notes"], CONTENT["prep_steps"]


# ---------------------------------------------------------------------------
# The plan: what to generate, derived from the seed, without the rows
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pick:
    """A scenario trainees can practise."""

    id: str
    difficulty: int  # index into _DIFFICULTIES
    title: str


@dataclass
class OrgPlan:
    """One org of this load and how much of the load it gets."""

    index: int
    spec: DemoOrg
    org_id: str
    created: int
    admins: list[str]
    picks: list[Pick]
    by_difficulty: tuple[tuple[Pick, ...], ...]
    attempts: int
    trainees: int
    managers: int
    new: bool  # created by this load (orgs, admins, scenarios are inserted)


@dataclass
class Plan:
    """Everything the generators need: seed, cohort, clock and the orgs."""

    seed: int
    cohort: int  # 0 for the first load; later loads add a cohort each
    now: int  # epoch seconds
    orgs: list[OrgPlan]

    def rng(self, org: OrgPlan, kind: str, index: int) -> random.Random:
        """An independent, reproducible random stream for one entity."""
        # A str seed is hashed with SHA-512: stable across runs and processes.
        return random.Random(f"{self.seed}:{self.cohort}:{org.index}:{kind}:{index}")


@dataclass(slots=True)
class Assignment:
    """An assignment of a trainee, and whether the trainee will get to it."""

    id: str
    scenario: Pick
    assigned_by: str
    created: int
    due: int
    required: bool
    will_practise: bool
    target: int  # when the trainee turns to it
    done: bool = False


@dataclass(slots=True)
class Trainee:
    """A trainee's profile; ``rng`` continues into their attempt history."""

    index: int
    user_id: str
    name: str
    email: str
    manager: str
    joined: int
    skill: float
    gain: float
    rate: float
    noise: float
    talk_bias: float
    criteria_bias: tuple[float, ...]
    attempts: int
    active: bool  # the last attempt is a call in progress
    fresh: bool  # the last attempt just ended and awaits its score
    assignments: list[Assignment]
    progress: list[tuple]  # (scenario, is_saved, saved_at, rating, notes, created)
    chats: list[tuple]  # (id, scenario or None, started, completed or None, steps done)
    rng: random.Random


def _clerk_id(rng: random.Random) -> str:
    return "user_" + "".join(rng.choices(_B62, k=27))


def _uuid(rng: random.Random) -> str:
    # A version-4 UUID from the seeded stream, formatted directly (twice as fast
    # as uuid.UUID, and this runs twice per attempt).
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _person(rng: random.Random, domain: str, tag: str) -> tuple[str, str]:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    local = f"{first}.{last}".lower().replace("ü", "u")
    return f"{first} {last}", f"{local}.{tag}@{domain}"


def _admin(plan: Plan, org: OrgPlan, k: int) -> tuple[str, str, str]:
    """(user id, name, email) of admin ``k`` of a new org."""
    if org.index == 0 and k == 0:
        return DEMO_ADMIN, "Alex Rivera", f"alex.rivera@{org.spec.domain}"
    rng = plan.rng(org, "admin", k)
    name, email = _person(rng, org.spec.domain, f"a{k}")
    return _clerk_id(rng), name, email


def _manager(plan: Plan, org: OrgPlan, j: int) -> tuple[str, str, str]:
    """(user id, name, email) of the manager of team ``j`` of this cohort."""
    if plan.cohort == 0 and org.index == 0 and j == 0:
        return DEMO_MANAGER, "Morgan Lee", f"morgan.lee@{org.spec.domain}"
    rng = plan.rng(org, "manager", j)
    name, email = _person(rng, org.spec.domain, f"m{plan.cohort}.{j}")
    return _clerk_id(rng), name, email


def _attempt_count(plan: Plan, org: OrgPlan, i: int) -> int:
    """Attempts of trainee ``i``: the org's share split evenly, then moved
    within pairs so some practise far more than others while the total stays exact."""
    base, extra = divmod(org.attempts, org.trainees)
    mine = base + (i < extra)
    partner = i ^ 1
    if partner >= org.trainees:
        return mine
    theirs = base + (partner < extra)
    shift = plan.rng(org, "pair", i // 2).randint(0, int(min(mine, theirs) * 0.6))
    # The even one gains, so the demo trainee (index 0) has a long history.
    return mine + shift if i % 2 == 0 else mine - shift


def _trainee(plan: Plan, org: OrgPlan, i: int) -> Trainee:
    """Trainee ``i`` of ``org`` in this cohort, derived from its own random stream."""
    rng = plan.rng(org, "trainee", i)
    demo = plan.cohort == 0 and org.index == 0 and i == 0
    name, email = _person(rng, org.spec.domain, f"t{plan.cohort}.{i}")
    user_id = _clerk_id(rng)
    if demo:
        user_id, name, email = DEMO_TRAINEE, "Taylor Kim", f"taylor.kim@{org.spec.domain}"
    window_start = plan.now - WINDOW_DAYS * DAY
    joined = window_start + (
        DAY if demo else 2 * DAY + int(rng.random() * 0.55 * WINDOW_DAYS * DAY)
    )
    manager = _manager(plan, org, i // TEAM_SIZE)[0]
    count = _attempt_count(plan, org, i)
    active = count > 0 and (demo or rng.random() < 0.05)
    fresh = count > 1 and not active and rng.random() < 0.04
    trainee = Trainee(
        index=i,
        user_id=user_id,
        name=name,
        email=email,
        manager=manager,
        joined=joined,
        skill=min(max(rng.gauss(50, 9), 25.0), 75.0),
        gain=rng.uniform(12, 32),
        rate=rng.uniform(0.04, 0.14),
        noise=rng.uniform(4, 8),
        talk_bias=rng.gauss(0, 0.04),
        criteria_bias=tuple(rng.gauss(0, 5) for _ in _CRITERIA),
        attempts=count,
        active=active,
        fresh=fresh,
        assignments=[],
        progress=[],
        chats=[],
        rng=rng,
    )
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        created = joined + DAY + int(rng.random() * (plan.now - joined - DAY))
        due = created + rng.randint(5, 21) * DAY
        trainee.assignments.append(
            Assignment(
                id=_uuid(rng),
                scenario=rng.choice(org.picks),
                assigned_by=manager if rng.random() < 0.8 else org.admins[0],
                created=created,
                due=due,
                required=rng.random() < 0.7,
                will_practise=rng.random() < 0.75,
                target=created + int(rng.random() * 1.2 * (due - created)),
            )
        )
    for pick in rng.sample(org.picks, min(len(org.picks), rng.choice((0, 0, 1, 2, 3)))):
        saved = rng.random() < 0.7
        rating = rng.choices((None, 2, 3, 4, 5), (4, 1, 2, 4, 3))[0]
        if not saved and rating is None:
            rating = 4
        at = joined + int(rng.random() * (plan.now - joined))
        notes = rng.choice(_NOTES) if rng.random() < 0.15 else None
        trainee.progress.append((pick, saved, at if saved else None, rating, notes, at))
    if rng.random() < 0.3:
        for _ in range(rng.choice((1, 1, 2))):
            started = joined + int(rng.random() * (plan.now - joined - HOUR))
            pick = rng.choice(org.picks) if rng.random() < 0.85 else None
            steps = rng.randint(0, len(_STEPS))
            completed = started + rng.randint(20, 90) * 60 if steps == len(_STEPS) else None
            trainee.chats.append((_uuid(rng), pick, started, completed, steps))
    return trainee


def _plan_orgs(conn: psycopg.Connection, seed: int, attempts: int, now: int) -> Plan:
    """The orgs to load into: new ones on an empty database, else the existing demo orgs."""
    existing = dict(
        conn.execute(
            "select clerk_org_id, id::text from orgs where clerk_org_id = any(%s)",
            [[o.clerk_org_id for o in DEMO_ORGS]],
        ).fetchall()
    )
    if existing and len(existing) != len(DEMO_ORGS):
        missing = sorted({o.clerk_org_id for o in DEMO_ORGS} - set(existing))
        raise SeedError(
            f"partial demo data: {', '.join(missing)} missing; reset the database "
            "(python -m dev reset) and seed again"
        )
    cohort = 0
    if existing:
        # Members already in the demo orgs key the new cohort's random streams,
        # so a second load never regenerates the first one's ids.
        cohort = conn.execute(
            "select count(*) from org_members where org_id = any(%s::uuid[])",
            [list(existing.values())],
        ).fetchone()[0]
    plan = Plan(seed=seed, cohort=cohort, now=now, orgs=[])
    remaining = attempts
    for index, spec in enumerate(DEMO_ORGS):
        share = remaining if index == len(DEMO_ORGS) - 1 else int(attempts * spec.share)
        remaining -= share
        trainees = max(MIN_TRAINEES_PER_ORG, math.ceil(share / ATTEMPTS_PER_TRAINEE))
        org_id = existing.get(spec.clerk_org_id) or str(uuid.uuid5(_NAMESPACE, spec.clerk_org_id))
        org = OrgPlan(
            index=index,
            spec=spec,
            org_id=org_id,
            created=now - spec.age_days * DAY,
            admins=[],
            picks=[],
            by_difficulty=(),
            attempts=share,
            trainees=trainees,
            managers=math.ceil(trainees / TEAM_SIZE),
            new=not existing,
        )
        if org.new:
            org.admins = [_admin(plan, org, k)[0] for k in range(spec.admins)]
            content = [*BUILTIN_SCENARIOS, *ORG_SCENARIOS[spec.slug]]
            org.picks = [
                Pick(str(_scenario_id(s["key"])), _DIFFICULTIES.index(s["difficulty"]), s["title"])
                for s in content
                if s.get("visibility", "public") != "private"
            ]
        else:
            org.admins = [
                r[0]
                for r in conn.execute(
                    "select user_id from org_members where org_id = %s and role = 'admin'"
                    " and deleted_at is null order by created_at, user_id",
                    [org_id],
                )
            ]
            org.picks = [
                Pick(r[0], _DIFFICULTIES.index(r[1]), r[2])
                for r in conn.execute(
                    "select id::text, difficulty::text, title from scenarios"
                    " where (org_id is null or org_id = %s) and is_active"
                    " and visibility <> 'private' order by org_id nulls first, created_at, id",
                    [org_id],
                )
            ]
            if not org.admins or not org.picks:
                raise SeedError(f"demo org {spec.clerk_org_id} has no admin or no scenario left")
        org.by_difficulty = tuple(
            tuple(p for p in org.picks if p.difficulty == d) for d in range(len(_DIFFICULTIES))
        )
        plan.orgs.append(org)
    return plan


# ---------------------------------------------------------------------------
# Row generators (one per table, each re-deriving what it needs)
# ---------------------------------------------------------------------------


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


ORG_COLUMNS = ("id", "clerk_org_id", "name", "slug", "created_at", "updated_at")


def _org_rows(plan: Plan) -> Iterator[tuple]:
    for org in plan.orgs:
        if org.new:
            created = _ts(org.created)
            yield org.org_id, org.spec.clerk_org_id, org.spec.name, org.spec.slug, created, created


MEMBER_COLUMNS = _names(
    "org_id user_id role manager_user_id display_name email created_at updated_at"
)


def _member_rows(plan: Plan) -> Iterator[tuple]:
    # Managers before the trainees they manage, admins before managers: the
    # foreign key to the manager is checked row by row when triggers are on.
    for org in plan.orgs:
        if org.new:
            for k in range(org.spec.admins):
                user_id, name, email = _admin(plan, org, k)
                at = _ts(org.created + k * HOUR)
                yield org.org_id, user_id, "admin", None, name, email, at, at
        first_manager_day = org.created + DAY if plan.cohort == 0 else plan.now - 190 * DAY
        for j in range(org.managers):
            user_id, name, email = _manager(plan, org, j)
            at = _ts(first_manager_day + j * HOUR)
            yield org.org_id, user_id, "manager", org.admins[0], name, email, at, at
        for i in range(org.trainees):
            t = _trainee(plan, org, i)
            at = _ts(t.joined)
            yield org.org_id, t.user_id, "trainee", t.manager, t.name, t.email, at, at


SCENARIO_COLUMNS = _names(
    "id org_id title description role difficulty category instructions context"
    " expected_outcome learning_goal learning_objectives persona comfort_indicators"
    " difficulty_rating cefr_level cefr_recommendation created_by_user_id visibility"
    " is_active created_at updated_at"
)


def _scenario_row(s: dict[str, Any], org_id: str | None, author: str | None, at: int) -> tuple:
    return (
        str(_scenario_id(s["key"])),
        org_id,
        s["title"],
        s["description"],
        s["role"],
        s["difficulty"],
        s["category"],
        s["instructions"],
        s["context"],
        s["expected_outcome"],
        s["learning_goal"],
        json.dumps(s["learning_objectives"]),
        json.dumps(s["persona"]),
        json.dumps(CONTENT["comfort_indicators"]),
        _DIFFICULTIES.index(s["difficulty"]) * 2 + 1,
        ("B1", "B2", "C1")[_DIFFICULTIES.index(s["difficulty"])],
        CONTENT["cefr_recommendation"],
        author,
        s.get("visibility", "public"),
        True,
        _ts(at),
        _ts(at),
    )


def _scenario_rows(plan: Plan, builtins: bool) -> Iterator[tuple]:
    if builtins:
        first = min(org.created for org in plan.orgs) - DAY
        for s in BUILTIN_SCENARIOS:
            yield _scenario_row(s, None, None, first)
    for org in plan.orgs:
        if org.new:
            for n, s in enumerate(ORG_SCENARIOS[org.spec.slug]):
                yield _scenario_row(s, org.org_id, org.admins[0], org.created + (n + 2) * DAY)


ASSIGNMENT_COLUMNS = _names(
    "id org_id scenario_id assignee_user_id assigned_by_user_id due_at required"
    " created_at updated_at"
)


def _trainees(plan: Plan) -> Iterator[tuple[OrgPlan, Trainee]]:
    for org in plan.orgs:
        for i in range(org.trainees):
            yield org, _trainee(plan, org, i)


def _assignment_rows(plan: Plan) -> Iterator[tuple]:
    for org, t in _trainees(plan):
        for a in t.assignments:
            at = _ts(a.created)
            yield (
                a.id,
                org.org_id,
                a.scenario.id,
                t.user_id,
                a.assigned_by,
                _ts(a.due),
                a.required,
                at,
                at,
            )


PROGRESS_COLUMNS = _names(
    "org_id user_id scenario_id is_saved saved_at user_rating user_notes created_at updated_at"
)


def _progress_rows(plan: Plan) -> Iterator[tuple]:
    for org, t in _trainees(plan):
        for pick, saved, saved_at, rating, notes, at in t.progress:
            yield (
                org.org_id,
                t.user_id,
                pick.id,
                saved,
                None if saved_at is None else _ts(saved_at),
                rating,
                notes,
                _ts(at),
                _ts(at),
            )


CHAT_COLUMNS = _names(
    "id org_id user_id title scenario_progress scenario_id scenario_started_at"
    " scenario_completed_at created_at updated_at"
)


def _chat_rows(plan: Plan) -> Iterator[tuple]:
    for org, t in _trainees(plan):
        for chat_id, pick, started, completed, steps_done in t.chats:
            if pick is None:
                updated = _ts(started + 15 * 60)
                yield (
                    chat_id,
                    org.org_id,
                    t.user_id,
                    "Objection ideas",
                    None,
                    None,
                    None,
                    None,
                    (_ts(started)),
                    updated,
                )
                continue
            last = completed or started + (steps_done + 1) * 7 * 60
            progress = {
                "scenario": {
                    "id": pick.id,
                    "title": pick.title,
                    "description": f"Guided preparation for '{pick.title}'",
                    "steps": [
                        {
                            "title": title,
                            "description": description,
                            "actions": [
                                {
                                    "label": action,
                                    "prompt": f"{action} for the scenario '{pick.title}'.",
                                    "agentName": "Sales Coach",
                                    "type": "research" if n == 0 else "chat",
                                }
                            ],
                        }
                        for n, (title, description, action) in enumerate(_STEPS)
                    ],
                },
                "currentStep": min(steps_done, len(_STEPS) - 1),
                "completedSteps": list(range(steps_done)),
                "triggeredActions": {
                    f"step_{n}_action_0": n < steps_done for n in range(len(_STEPS))
                },
                "startedAt": _iso(started),
                "lastUpdatedAt": _iso(last),
            }
            yield (
                chat_id,
                org.org_id,
                t.user_id,
                f"Prep: {pick.title}",
                json.dumps(progress),
                pick.id,
                _ts(started),
                None if completed is None else _ts(completed),
                _ts(started),
                _ts(last),
            )


ATTEMPT_COLUMNS = _names(
    "id org_id clerk_user_id scenario_id assignment_id started_at ended_at"
    " duration_seconds score score_breakdown kpis transcript_path recording_path"
    " feedback_text feedback_json manager_comments status metadata vapi_call_id"
    " created_at updated_at version answers auto_save_data submitted_at"
    " last_activity_at scored_by"
)
_DIFFICULTY_OFFSET = (6.0, 0.0, -9.0)  # points: advanced scenarios score lower
_MEAN_CALL_SECONDS = (380, 560, 760)
# Event-level KPIs (seed 001: "optional, high volume") exist for calls of the
# last 90 days, as if the pipeline had been switched on then; older calls
# carry the aggregate KPIs only.
EVENTS_DAYS = 90
# JSON documents of the hot loop are formatted directly: json.dumps would be a
# quarter of the generator's time.
_BREAKDOWN = (
    '{"opening":%d,"discovery":%d,"objection_handling":%d,"value_articulation":%d,"closing":%d}'
)
_FEEDBACK = {
    (b, w): f"{_STRENGTH[best]} {_IMPROVE[worst]}"
    for b, best in enumerate(_CRITERIA)
    for w, worst in enumerate(_CRITERIA)
}
_FEEDBACK_JSON = {
    (b, w): json.dumps({"strengths": [best], "improvements": [worst], "rubric_version": 2})
    for b, best in enumerate(_CRITERIA)
    for w, worst in enumerate(_CRITERIA)
}
_DRAFT_ANSWERS = json.dumps({"notes": "Ask about their renewal date"})
_DRAFT_AUTOSAVE = json.dumps({"step": 2, "notes": "Opened with the logistics case study"})


def _start_times(t: Trainee, now: int) -> list[int]:
    """Strictly increasing start times: random moments in the trainee's window,
    each at least a slot after the previous one; a live or just-finished last
    call happens in the last two hours."""
    rand = t.rng.random
    tail = 1 if (t.active or t.fresh) else 0
    history = t.attempts - tail
    first = t.joined + HOUR
    room = max(now - 3 * HOUR - first - history * SLOT_SECONDS, 0)
    offsets = sorted(rand() for _ in range(history))
    times = [first + int(u * room) + k * SLOT_SECONDS for k, u in enumerate(offsets)]
    if tail:
        ago = (5 + int(rand() * 96)) * 60 if t.active else (20 + int(rand() * 91)) * 60
        times.append(max(now - ago, times[-1] + SLOT_SECONDS if times else first))
    return times


def _choose(org: OrgPlan, t: Trainee, started: int, frac: float) -> Pick:
    """The assignment whose moment has come, else a scenario by difficulty:
    beginner ones early in a trainee's history, advanced ones later."""
    for a in t.assignments:
        if a.will_practise and not a.done and started >= a.target:
            a.done = True
            return a.scenario
    rand = t.rng.random
    easy, hard = 1.0 - 0.7 * frac, 0.1 + 0.8 * frac
    r = rand() * (easy + 0.6 + hard)
    group = org.by_difficulty[0 if r < easy else 1 if r < easy + 0.6 else 2] or org.picks
    return group[int(rand() * len(group))]


def _events(rand: Any, ms: int, curve: float, interruptions: int) -> str:
    """kpis.events: the notable moments of a call in time order (fact_kpi_events)."""
    handled = "true" if rand() < 0.4 + 0.5 * curve else "false"
    events = [
        (
            30_000 + int(rand() * (ms - 30_000)),
            f'"objection_raised","event_value":{{"handled":{handled}}}',
        )
    ]
    if rand() < 0.35:
        handled = "true" if rand() < 0.4 + 0.5 * curve else "false"
        events.append(
            (
                30_000 + int(rand() * (ms - 30_000)),
                f'"objection_raised","event_value":{{"handled":{handled}}}',
            )
        )
    events.extend(
        (5_000 + int(rand() * (ms - 5_000)), '"interruption","event_value":{"by":"trainee"}')
        for _ in range(interruptions)
    )
    if rand() < 0.35:
        keyword = _KEYWORDS[int(rand() * len(_KEYWORDS))]
        events.append(
            (
                10_000 + int(rand() * (ms - 10_000)),
                f'"keyword_mentioned","event_value":{{"keyword":"{keyword}"}}',
            )
        )
    if rand() < 0.3 - 0.2 * curve:
        events.append(
            (
                10_000 + int(rand() * (ms - 10_000)),
                f'"long_pause","event_value":{{"seconds":{6 + int(rand() * 9)}}}',
            )
        )
    events.sort()
    return (
        "[" + ",".join(f'{{"event_type":{body},"timestamp_ms":{at}}}' for at, body in events) + "]"
    )


# The outcome of a call: the columns that depend on how it went, in this order.
# (ended, duration, score, breakdown, kpis, transcript, recording, feedback,
#  feedback_json, comment, submitted, activity, version, answers, autosave, scored_by)


def _scored_call(
    t: Trainee,
    pick: Pick,
    *,
    started: int,
    j: int,
    org_id: str,
    ids: tuple[str, str],
    events_from: int,
) -> tuple:
    """A completed call with Vapi's report in: score improving with practice, KPIs, feedback."""
    rand, bits = t.rng.random, t.rng.getrandbits
    attempt_id, call_id = ids
    level = pick.difficulty
    duration = min(
        max(int(_MEAN_CALL_SECONDS[level] * (0.65 + 0.7 * rand())), 90), MAX_CALL_SECONDS
    )
    ms = duration * 1000
    # The learning curve: base skill plus a gain that saturates with the attempt number.
    curve = 1.0 - math.exp(-t.rate * j)
    raw = t.skill + t.gain * curve + _DIFFICULTY_OFFSET[level] + t.noise * _Z[bits(12)]
    score = round(min(max(raw, 0.0), 100.0), 1)
    marks = [min(max(round(score + bias + 6 * _Z[bits(12)]), 0), 100) for bias in t.criteria_bias]
    best, worst = marks.index(max(marks)), marks.index(min(marks))
    speech = int(ms * (0.82 + 0.1 * rand()))
    ratio = min(max(0.66 - 0.18 * curve + t.talk_bias + 0.04 * _Z[bits(12)], 0.25), 0.9)
    talk = int(speech * ratio)
    interruptions = max(0, round(2.4 - 1.8 * curve + 0.9 * _Z[bits(12)]))
    fillers = max(0, round((12 - 8 * curve + 2.5 * _Z[bits(12)]) * duration / 480))
    questions = max(0, round(3 + 7 * curve + 1.5 * _Z[bits(12)]))
    kpis = (
        f'{{"talk_ms":{talk},"listen_ms":{speech - talk},"talk_ratio":{ratio:.3f},'
        f'"filler_words":{fillers},"questions_asked":{questions},'
        f'"interruptions":{interruptions},'
        f'"words_per_minute":{round(160 - 12 * curve + 9 * _Z[bits(12)])},'
        f'"longest_monologue_ms":{int(talk * (0.08 + 0.17 * rand()))}'
    )
    if started >= events_from:
        kpis += ',"events":' + _events(rand, ms, curve, interruptions)
    kpis += "}"
    recording = f"recordings/{org_id}/{attempt_id}/{call_id}.webm" if rand() < 0.6 else None
    comment = _MANAGER_COMMENTS[int(rand() * len(_MANAGER_COMMENTS))] if rand() < 0.05 else None
    ended = started + duration
    return (
        ended,
        duration,
        score,
        _BREAKDOWN % tuple(marks),
        kpis,
        f"transcripts/{org_id}/{attempt_id}/transcript.json",
        recording,
        _FEEDBACK[best, worst],
        _FEEDBACK_JSON[best, worst],
        comment,
        ended,
        ended,
        2 + int(rand() * 3),
        _EMPTY,
        _EMPTY,
        "vapi",
    )


def _pending_call(rand: Any, started: int) -> tuple:
    """Submitted minutes ago; Vapi's end-of-call report (score, timing, KPIs) is not in yet."""
    ended = started + (4 + int(rand() * 12)) * 60
    none = (None,) * 8
    return (ended, *none, None, ended, ended, 2, _EMPTY, _EMPTY, None)


def _short_call(rand: Any, started: int, status: str) -> tuple:
    """An abandoned or failed call: short, unscored, sometimes without timing."""
    duration = kpis = None
    if status == "abandoned" or rand() < 0.5:
        duration = 20 + int(rand() * 221) if status == "abandoned" else 3 + int(rand() * 58)
        talk = duration * 500
        kpis = f'{{"talk_ms":{talk},"listen_ms":{duration * 1000 - talk}}}'
    ended = started + (duration or 3 + int(rand() * 28))
    version = 1 + int(rand() * 2)
    return (ended, duration, None, None, kpis, *(None,) * 6, ended, version, _EMPTY, _EMPTY, None)


def _live_call(rand: Any, started: int, now: int) -> tuple:
    """A call in progress, with a draft saved by the app's autosave."""
    activity = min(started + (1 + int(rand() * 4)) * 60, now)
    version = 1 + int(rand() * 3)
    return (*(None,) * 11, activity, version, _DRAFT_ANSWERS, _DRAFT_AUTOSAVE, None)


def _status(t: Trainee, last: bool, frac: float) -> str:
    """Mostly completed; abandoned less often with practice; a few failed calls."""
    if last and t.active:
        return "in_progress"
    if last and t.fresh:
        return "completed"
    r = t.rng.random()
    abandon = 0.12 - 0.05 * frac
    return "failed" if r < 0.025 else "abandoned" if r < 0.025 + abandon else "completed"


def _trainee_attempts(
    plan: Plan, org: OrgPlan, t: Trainee, counts: dict[str, int], channels: tuple[str, str]
) -> Iterator[tuple]:
    """One trainee's attempts in start order."""
    rng = t.rng
    rand = rng.random
    n = t.attempts
    demo = plan.cohort == 0 and t.user_id == DEMO_TRAINEE
    events_from = plan.now - EVENTS_DAYS * DAY
    for j, started in enumerate(_start_times(t, plan.now)):
        pick = _choose(org, t, started, j / (n - 1) if n > 1 else 1.0)
        assignment_id = None
        for a in t.assignments:
            if a.scenario is pick and a.created <= started <= a.due + 2 * DAY:
                assignment_id = a.id
                break
        ids = (_uuid(rng), _uuid(rng))
        last = j == n - 1
        status = _status(t, last, j / n)
        if demo and t.active and j >= n - 2:
            # The demo trainee's current call and latest result have fixed ids.
            if last:
                ids = (str(DEMO_ACTIVE_ATTEMPT_ID), ids[1])
            else:
                status, ids = "completed", (str(DEMO_COMPLETED_ATTEMPT_ID), ids[1])
        counts[status] = counts.get(status, 0) + 1
        if status == "in_progress":
            outcome = _live_call(rand, started, plan.now)
        elif status != "completed":
            outcome = _short_call(rand, started, status)
        elif last and t.fresh:
            outcome = _pending_call(rand, started)
        else:
            outcome = _scored_call(
                t, pick, started=started, j=j, org_id=org.org_id, ids=ids, events_from=events_from
            )
        ended, duration, score, breakdown, kpis, transcript, recording = outcome[:7]
        feedback, feedback_json, comment, submitted, activity, version = outcome[7:13]
        answers, autosave, scored_by = outcome[13:]
        if ids[0] == str(DEMO_ACTIVE_ATTEMPT_ID):
            version = 1  # the sample events save with If-Match: "1"
        yield (
            ids[0],
            org.org_id,
            t.user_id,
            pick.id,
            assignment_id,
            _ts(started),
            None if ended is None else _ts(ended),
            duration,
            score,
            breakdown,
            kpis,
            transcript,
            recording,
            feedback,
            feedback_json,
            comment,
            status,
            channels[rand() < 0.2],
            ids[1],
            _ts(started),
            _ts(activity),
            version,
            answers,
            autosave,
            None if submitted is None else _ts(submitted),
            _ts(activity),
            scored_by,
        )


def _attempt_rows(plan: Plan, counts: dict[str, int]) -> Iterator[tuple]:
    """Every attempt of this load, trainee by trainee, each in start order."""
    channels = (
        json.dumps({"source": "demo_seed", "cohort": plan.cohort, "channel": "web"}),
        json.dumps({"source": "demo_seed", "cohort": plan.cohort, "channel": "phone"}),
    )
    for org, t in _trainees(plan):
        if t.attempts:
            yield from _trainee_attempts(plan, org, t, counts, channels)


# ---------------------------------------------------------------------------
# Activity, derived from the attempts of this load in SQL
# ---------------------------------------------------------------------------

# Activity for a sample of the attempts of this load (about 5%, plus every
# call in progress and every call of the demo trainee), written from the
# attempts themselves so the rows never pass through Python.
_ACTIVITY_SQL = """
insert into attempt_activity
       (org_id, attempt_id, user_id, event_type, payload, occurred_at, created_at)
select a.org_id, a.id, a.clerk_user_id, e.event_type, e.payload, e.at, e.at
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
 where a.xmin = %(xid)s::xid
   and e.at is not null
   and (get_byte(uuid_send(a.id), 15) < 13 or a.status = 'in_progress'
        or a.clerk_user_id = %(demo)s)
"""


# The big tables whose secondary indexes are rebuilt after a load that more
# than doubles them: one sort per index beats a million random insertions into
# each (about a third of the load's time). Primary keys stay: ON CONFLICT and
# the fact inserts rely on them.
_DEFERRED_INDEX_TABLES = ("scenario_attempts", "fact_scenario_attempts", "fact_kpi_events")
_SECONDARY_INDEXES = """
select i.relname, pg_get_indexdef(x.indexrelid)
  from pg_index x
  join pg_class t on t.oid = x.indrelid
  join pg_class i on i.oid = x.indexrelid
 where t.relnamespace = 'public'::regnamespace
   and t.relname = any(%s)
   and not x.indisprimary
   and not exists (select 1 from pg_constraint c where c.conindid = x.indexrelid)
 order by i.relname
"""

# Every table a load writes (ANALYZEd afterwards).
WRITTEN_TABLES = _names(
    "orgs org_members dim_users scenarios dim_scenarios assignments scenario_attempts"
    " attempt_activity chat_sessions scenario_metadata user_scenario_progress"
    " fact_scenario_attempts fact_kpi_events"
)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


class _Meter:
    """Progress on stderr: one line rewritten with \\r on a terminal, a line per
    10% otherwise (logs and captured output stay readable)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self.tty = enabled and sys.stderr.isatty()
        self.began = time.perf_counter()
        self.shown = 0.0
        self.next_tenth = 1

    def _line(self, done: int) -> str:
        elapsed = max(time.perf_counter() - self.began, 1e-9)
        percent = 100.0 * done / self.total if self.total else 100.0
        return (
            f"[seed] attempts {done:>11,}/{self.total:,} {percent:5.1f}% "
            f"{done / elapsed:>9,.0f} rows/s {elapsed:6.1f} s"
        )

    def update(self, done: int) -> None:
        """Show ``done`` attempts written (throttled)."""
        if not self.enabled:
            return
        if self.tty:
            now = time.perf_counter()
            if now - self.shown >= 0.2:
                self.shown = now
                sys.stderr.write("\r" + self._line(done))
                sys.stderr.flush()
        elif self.total and done * 10 >= self.next_tenth * self.total:
            self.next_tenth = done * 10 // self.total + 1
            print(self._line(done), file=sys.stderr, flush=True)

    def finish(self, done: int) -> None:
        """Show the final count and end the progress line."""
        if self.enabled:
            sys.stderr.write(("\r" if self.tty else "") + self._line(done) + "\n")
            sys.stderr.flush()

    def note(self, text: str) -> None:
        """A step of the load."""
        if self.enabled:
            print(f"[seed] {text}", file=sys.stderr, flush=True)


def _copy(
    cur: psycopg.Cursor,
    table: str,
    columns: Sequence[str],
    rows: Iterable[tuple],
    meter: _Meter | None = None,
) -> int:
    """COPY ``rows`` into ``table``; psycopg sends the buffer as it fills, so
    neither side holds more than a chunk."""
    statement = sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    written = 0
    with cur.copy(statement) as copy:
        write = copy.write_row
        for row in rows:
            write(row)
            written += 1
            if meter is not None and not written & 1023:
                meter.update(written)
    if meter is not None:
        meter.finish(written)
    return written


@dataclass
class SeedSummary:
    """What one load inserted."""

    cohort: int
    new_orgs: int
    members: int
    scenarios: int
    assignments: int
    progress: int  # user_scenario_progress rows with a save, rating or note
    chat_sessions: int
    attempts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    activity: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    refresh: str | None = None

    @property
    def seconds(self) -> float:
        """Wall time of the whole load."""
        return sum(self.timings.values())

    def __str__(self) -> str:
        statuses = ", ".join(f"{n:,} {s}" for s, n in sorted(self.statuses.items()))
        what = (
            f"{len(DEMO_ORGS)} orgs ({DEMO_CLERK_ORG_ID}: {DEMO_ADMIN}, {DEMO_MANAGER}, "
            f"{DEMO_TRAINEE})"
            if self.new_orgs
            else f"a new cohort added to the {len(DEMO_ORGS)} demo orgs"
        )
        return (
            f"{what}, {self.members:,} members, {self.scenarios} scenarios, "
            f"{self.assignments:,} assignments, {self.attempts:,} attempts ({statuses}), "
            f"{self.activity:,} activity events, {self.chat_sessions:,} chat sessions "
            f"in {self.seconds:.1f} s"
        )


def _current_minute() -> int:
    return int(time.time()) // 60 * 60


def _defer_indexes(conn: psycopg.Connection, incoming: int) -> list[tuple[str, str]]:
    """Drop the big tables' secondary indexes when this load outgrows what they
    hold; returns (name, definition) of each, for _rebuild_indexes."""
    existing = conn.execute("select count(*) from scenario_attempts").fetchone()[0]
    if incoming <= max(existing, 1000):
        return []
    indexes = conn.execute(_SECONDARY_INDEXES, [list(_DEFERRED_INDEX_TABLES)]).fetchall()
    for name, _ in indexes:
        conn.execute(sql.SQL("drop index {}").format(sql.Identifier("public", name)))
    return indexes


def _rebuild_indexes(conn: psycopg.Connection, indexes: list[tuple[str, str]]) -> None:
    """Recreate the dropped indexes from their catalog definitions."""
    if indexes:
        conn.execute("set local maintenance_work_mem = '256MB'")
    for _, definition in indexes:
        conn.execute(sql.SQL(definition))  # pg_get_indexdef output, not input


def _insert_rows(conn: psycopg.Connection, plan: Plan, meter: _Meter, lap: Any) -> SeedSummary:
    """Insert everything inside the caller's transaction (the triggers derive the rest)."""
    cur = conn.cursor()
    new = plan.orgs[0].new
    builtins_missing = (
        new
        and not conn.execute(
            "select exists (select 1 from scenarios where id = %s)",
            [BUILTIN_SCENARIO_IDS[BUILTIN_SCENARIOS[0]["key"]]],
        ).fetchone()[0]
    )
    total = sum(o.attempts for o in plan.orgs)
    what = "creating the demo orgs" if new else "adding a new cohort to the demo orgs"
    meter.note(f"{what}: {sum(o.trainees for o in plan.orgs):,} trainees, {total:,} attempts")
    deferred = _defer_indexes(conn, total)
    summary = SeedSummary(
        cohort=plan.cohort,
        new_orgs=_copy(cur, "orgs", ORG_COLUMNS, _org_rows(plan)),
        members=_copy(cur, "org_members", MEMBER_COLUMNS, _member_rows(plan)),
        scenarios=_copy(cur, "scenarios", SCENARIO_COLUMNS, _scenario_rows(plan, builtins_missing)),
        assignments=_copy(cur, "assignments", ASSIGNMENT_COLUMNS, _assignment_rows(plan)),
        progress=_copy(cur, "user_scenario_progress", PROGRESS_COLUMNS, _progress_rows(plan)),
        chat_sessions=_copy(cur, "chat_sessions", CHAT_COLUMNS, _chat_rows(plan)),
    )
    lap("members, scenarios, assignments")
    summary.attempts = _copy(
        cur, "scenario_attempts", ATTEMPT_COLUMNS, _attempt_rows(plan, summary.statuses), meter
    )
    lap("attempts (COPY and triggers)")
    xid = conn.execute("select pg_current_xact_id()::xid::text").fetchone()[0]
    summary.activity = cur.execute(_ACTIVITY_SQL, {"xid": xid, "demo": DEMO_TRAINEE}).rowcount
    lap("activity")
    if deferred:
        meter.note(f"rebuilding {len(deferred)} indexes")
        _rebuild_indexes(conn, deferred)
        lap("indexes")
    return summary


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
    if not isinstance(seed, int):
        raise TypeError(
            f"seed must be an int, not {type(seed).__name__}"
        )  # random.Random takes any
    clock = _current_minute() if now is None else int(now.timestamp())
    timings: dict[str, float] = {}
    began = time.perf_counter()
    meter = _Meter(progress, attempts)

    def lap(name: str) -> None:
        nonlocal began
        timings[name] = time.perf_counter() - began
        began = time.perf_counter()

    with psycopg.connect(admin_url) as conn:
        # Two seeders at once would both see "no demo orgs" and collide.
        conn.execute("select pg_advisory_xact_lock(hashtextextended('dev.seed', 0))")
        plan = _plan_orgs(conn, seed, attempts, clock)
        summary = _insert_rows(conn, plan, meter, lap)
    # After the commit: the planner needs the new sizes at once, and the
    # reporting views are refreshed from the facts just written.
    with psycopg.connect(admin_url, autocommit=True) as conn:
        meter.note("analyze and refresh the reporting views")
        tables = sql.SQL(", ").join(map(sql.Identifier, WRITTEN_TABLES))
        conn.execute(sql.SQL("analyze {}").format(tables))
        lap("analyze")
        status, error = conn.execute(
            "select status, error from refresh_reporting_views('manual', 'dev.seed')"
        ).fetchone()
        summary.refresh = status if error is None else f"{status}: {error}"
        lap("refresh views")
    summary.timings = timings
    return summary
