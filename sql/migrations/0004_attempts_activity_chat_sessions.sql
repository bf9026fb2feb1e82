-- 0004_attempts_activity_chat_sessions.sql
--
-- What: scenario_attempts (the original tracking columns, plus version for
-- optimistic concurrency, answers/auto_save_data drafts, submitted_at,
-- last_activity_at, scored_by), its tracking indexes, the three "migration
-- 0011" partial indexes and an active-attempt index; attempt_activity (the
-- activity log); chat_sessions (scenario progress as JSONB);
-- the trigger that counts a started attempt in scenario_metadata and
-- user_scenario_progress.
--
-- Why: the attempt is the centre of the product: the voice call, its score and
-- feedback, drafts saved with expected_version, and the source of every
-- derived figure (counters here, the star schema in 0005).
--
-- Visibility (RLS, practice_app): same org only; trainees their own attempts;
-- managers their own and their direct reports'; admins the whole org; a
-- 'system' context (a webhook that has set app.org_id to the attempt's org)
-- may read and update attempts of that one org.

-- ---------------------------------------------------------------------------
-- scenario_attempts
-- ---------------------------------------------------------------------------
create table scenario_attempts (
    id               uuid primary key default gen_random_uuid(),
    org_id           uuid not null references orgs (id) on delete cascade,
    clerk_user_id    text not null,
    scenario_id      uuid not null references scenarios (id),
    assignment_id    uuid references assignments (id) on delete set null,

    -- Timing
    started_at       timestamptz not null default now(),
    ended_at         timestamptz,
    duration_seconds integer check (duration_seconds >= 0),

    -- Performance
    score            numeric check (score between 0 and 100),
    score_breakdown  jsonb,
    kpis             jsonb,            -- talk_ms, listen_ms, optional "events" array (see trigger_populate_fact)

    -- Artifacts
    transcript_text  text,
    transcript_json  jsonb,
    transcript_path  text,
    recording_url    text,
    recording_path   text,

    -- Feedback
    feedback_text    text,
    feedback_json    jsonb,
    manager_comments text,

    -- Status & metadata
    status           attempt_status not null default 'in_progress',
    metadata         jsonb not null default '{}',
    vapi_call_id     text,

    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),

    -- Additions: optimistic concurrency, drafts, timing, the scorer
    version          integer not null default 1 check (version >= 1),
    answers          jsonb not null default '{}',
    auto_save_data   jsonb not null default '{}',
    submitted_at     timestamptz,
    last_activity_at timestamptz,
    scored_by        text,

    foreign key (org_id, clerk_user_id) references org_members (org_id, user_id) on delete cascade
);
comment on table scenario_attempts is
    'One practice call of a trainee on a scenario (seed 000) with optimistic-concurrency version and autosave drafts (seed 004).';
comment on column scenario_attempts.version is
    'Optimistic concurrency: every save/submit sets version = version + 1 where version = expected_version.';

-- The tracking indexes (their original names kept).
create index idx_scenario_attempts_org_id_user_id on scenario_attempts (org_id, clerk_user_id);
create index idx_scenario_attempts_org_id_scenario_id on scenario_attempts (org_id, scenario_id);
create index idx_scenario_attempts_started_at on scenario_attempts (started_at);
create index idx_scenario_attempts_status on scenario_attempts (status);
-- Unique: a Vapi call belongs to exactly one attempt (the webhook lookup relies on it).
create unique index idx_scenario_attempts_vapi_call_id on scenario_attempts (vapi_call_id)
    where vapi_call_id is not null;
create index idx_scenario_attempts_assignment_id on scenario_attempts (assignment_id)
    where assignment_id is not null;

-- The attempt-tracking partial indexes (their original names kept).
create index idx_scenario_attempts_user_scenario_time on scenario_attempts
    (org_id, clerk_user_id, scenario_id, started_at desc)
    where status = 'completed';
create index idx_scenario_attempts_user_scenario_score on scenario_attempts
    (org_id, clerk_user_id, scenario_id, score desc nulls last)
    where status = 'completed' and score is not null;
create index idx_scenario_attempts_user_recent on scenario_attempts
    (org_id, clerk_user_id, started_at desc)
    where status = 'completed';

-- Active-attempt monitoring (get_active_attempts).
create index idx_scenario_attempts_active on scenario_attempts (org_id, scenario_id)
    where status = 'in_progress';

create trigger set_updated_at before update on scenario_attempts
    for each row execute function practice_set_updated_at();

-- A completed attempt always has an end time (the warehouse and
-- mv_org_overview key on ended_at). INVOKER: edits NEW only, no extra UPDATE,
-- so version is untouched.
create function trigger_attempt_completion_defaults()
returns trigger
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
begin
    if new.ended_at is null then
        new.ended_at := now();
    end if;
    return new;
end
$$;
comment on function trigger_attempt_completion_defaults() is
    'BEFORE trigger on scenario_attempts: a row that is (or becomes) completed without ended_at gets ended_at = now().';
revoke all on function trigger_attempt_completion_defaults() from public;

create trigger attempt_completion_defaults
    before insert or update of status, ended_at on scenario_attempts
    for each row when (new.status = 'completed' and new.ended_at is null)
    execute function trigger_attempt_completion_defaults();

alter table scenario_attempts enable row level security;
alter table scenario_attempts force row level security;

create policy scenario_attempts_select on scenario_attempts for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) in ('admin', 'system')
            or clerk_user_id = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and clerk_user_id in (
                    select m.user_id from public.org_members m
                     where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                       and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                       and m.deleted_at is null))
        )
    );
-- Anyone practises only as themselves, on a scenario their org can see, and an
-- assignment (if any) must be theirs.
create policy scenario_attempts_insert on scenario_attempts for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and clerk_user_id = (select nullif(current_setting('app.user_id', true), ''))
        and exists (select 1 from public.scenarios s where s.id = scenario_attempts.scenario_id)
        and (assignment_id is null
             or exists (select 1 from public.assignments a
                         where a.id = scenario_attempts.assignment_id
                           and a.org_id = scenario_attempts.org_id
                           and a.assignee_user_id = scenario_attempts.clerk_user_id))
    );
-- Updates: the owner (drafts, submit), their manager and admins (comments,
-- review), a system context of the same org (Vapi webhook results).
create policy scenario_attempts_update on scenario_attempts for update to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) in ('admin', 'system')
            or clerk_user_id = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and clerk_user_id in (
                    select m.user_id from public.org_members m
                     where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                       and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                       and m.deleted_at is null))
        )
    )
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) in ('admin', 'system')
            or clerk_user_id = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and clerk_user_id in (
                    select m.user_id from public.org_members m
                     where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                       and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                       and m.deleted_at is null))
        )
    );

-- SECURITY DEFINER code running as the owner (triggers, maintenance) reads
-- attempts across orgs.
select practice_owner_policy('scenario_attempts', 'select');

-- SECURITY DEFINER exception: counts started attempts in the derived tables
-- scenario_metadata (total_attempts, completion_rate) and user_scenario_progress
-- (times_attempted, last_attempt_at), so the app role needs no write privilege
-- on those counters. Completion counters are applied by trigger_populate_fact()
-- (0005) together with the fact row, exactly once per attempt.
-- Statement-level over the inserted rows: one INSERT of the app and a COPY of a
-- million demo attempts (dev/seed.py) go through this same SQL, set-based.
create function trigger_attempt_counters()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    insert into scenario_metadata as m (org_id, scenario_id, total_attempts, completion_rate)
    select n.org_id, n.scenario_id, count(*), 0
      from new_attempts n
     group by n.org_id, n.scenario_id
    on conflict (org_id, scenario_id) do update
       set total_attempts  = m.total_attempts + excluded.total_attempts,
           completion_rate = least(round(100.0 * m.total_times_used
                                         / (m.total_attempts + excluded.total_attempts), 2), 100)::real;

    insert into user_scenario_progress as p (org_id, user_id, scenario_id, times_attempted, last_attempt_at)
    select n.org_id, n.clerk_user_id, n.scenario_id, count(*), max(n.started_at)
      from new_attempts n
     group by n.org_id, n.clerk_user_id, n.scenario_id
    on conflict (org_id, user_id, scenario_id) do update
       set times_attempted = p.times_attempted + excluded.times_attempted,
           last_attempt_at = greatest(p.last_attempt_at, excluded.last_attempt_at);
    return null;
end
$$;
comment on function trigger_attempt_counters() is
    'SECURITY DEFINER statement trigger (AFTER INSERT on scenario_attempts): total_attempts per org/scenario, times_attempted and last_attempt_at per user, over the inserted rows.';
revoke all on function trigger_attempt_counters() from public;

-- Name sorts before populate_fact_on_completion (0005): attempts inserted
-- already completed are counted before their completion.
create trigger count_attempt_on_insert after insert on scenario_attempts
    referencing new table as new_attempts
    for each statement execute function trigger_attempt_counters();

-- ---------------------------------------------------------------------------
-- attempt_activity (the activity log)
-- ---------------------------------------------------------------------------
create table attempt_activity (
    id          bigint generated always as identity primary key,
    org_id      uuid not null references orgs (id) on delete cascade,
    attempt_id  uuid not null references scenario_attempts (id) on delete cascade,
    user_id     text,                           -- who logged it (the context user)
    event_type  text not null,
    payload     jsonb not null default '{}',
    occurred_at timestamptz not null default now(),
    created_at  timestamptz not null default now()
);
create index attempt_activity_attempt_time_idx on attempt_activity (attempt_id, occurred_at desc);
create index attempt_activity_org_time_idx on attempt_activity (org_id, occurred_at desc);
comment on table attempt_activity is
    'Append-only activity events of an attempt (seed 004). Does not touch scenario_attempts: last_activity_at is the app''s to set.';

alter table attempt_activity enable row level security;
alter table attempt_activity force row level security;

-- Visible when its attempt is visible (the subquery is itself under RLS).
create policy attempt_activity_select on attempt_activity for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and exists (select 1 from public.scenario_attempts a where a.id = attempt_activity.attempt_id)
    );
create policy attempt_activity_insert on attempt_activity for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
        and exists (select 1 from public.scenario_attempts a
                     where a.id = attempt_activity.attempt_id
                       and a.org_id = attempt_activity.org_id)
    );

-- ---------------------------------------------------------------------------
-- chat_sessions
-- ---------------------------------------------------------------------------
create table chat_sessions (
    id                    uuid primary key default gen_random_uuid(),
    org_id                uuid not null references orgs (id) on delete cascade,
    user_id               text not null,
    title                 text,
    scenario_progress     jsonb,
    scenario_id           varchar(255),
    scenario_started_at   timestamptz,
    scenario_completed_at timestamptz,
    created_at            timestamptz not null default now(),
    updated_at            timestamptz not null default now(),
    foreign key (org_id, user_id) references org_members (org_id, user_id) on delete cascade
);
-- Their indexes (original names kept, org_id prefixed since every query is org-scoped).
create index idx_chat_sessions_scenario_id on chat_sessions (org_id, scenario_id);
create index idx_chat_sessions_scenario_started_at on chat_sessions (org_id, scenario_started_at);
create index idx_chat_sessions_active_scenarios on chat_sessions (org_id, user_id, scenario_id)
    where scenario_progress is not null;
create index idx_chat_sessions_user_created on chat_sessions (org_id, user_id, created_at desc);
comment on table chat_sessions is
    'Chat sessions with the scenario progress JSONB of seed 003 (GET/PUT/DELETE /chat-sessions/{id}/scenario-progress).';

create trigger set_updated_at before update on chat_sessions
    for each row execute function practice_set_updated_at();

alter table chat_sessions enable row level security;
alter table chat_sessions force row level security;

create policy chat_sessions_select on chat_sessions for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or user_id = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and user_id in (
                    select m.user_id from public.org_members m
                     where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                       and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                       and m.deleted_at is null))
        )
    );
create policy chat_sessions_insert on chat_sessions for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    );
create policy chat_sessions_update on chat_sessions for update to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    )
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    );
create policy chat_sessions_delete on chat_sessions for delete to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (user_id = (select nullif(current_setting('app.user_id', true), ''))
             or (select nullif(current_setting('app.role', true), '')) = 'admin')
    );
