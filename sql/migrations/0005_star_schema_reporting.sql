-- 0005_star_schema_reporting.sql
--
-- What: the reporting warehouse: fact_scenario_attempts,
-- fact_kpi_events, dim_time (prefilled 2024-01-01 .. 2028-12-31), the
-- completion trigger trigger_populate_fact() (fact row + KPI events + the
-- completion counters + assignment completion, exactly once per
-- attempt), a follow-up trigger that keeps the fact row current when a
-- completed attempt is scored late, the three materialized views with the
-- unique indexes REFRESH ... CONCURRENTLY needs, org-scoped security-barrier
-- views over them for the app, the refresh log refresh_runs and
-- refresh_reporting_views().
--
-- Why: dashboards read pre-aggregated data instead of scanning
-- attempts; the derived rows are written by SECURITY DEFINER triggers so the
-- app role has SELECT only on fact/dim tables.
--
-- Changes from the original warehouse design (deliberate):
--  * date_key = (started_at at time zone 'UTC')::date: started_at::date depends
--    on the session TimeZone and is not immutable, so it cannot be a
--    generated column.
--  * mv_leaderboard_month.month = date_trunc('month', started_at, 'UTC'):
--    still timestamptz as originally, but independent of the TimeZone of
--    whichever session happens to run the refresh.
--  * avg_talk_percentage divides by nullif(talk_ms + listen_ms, 0).
--  * mv_scenario_insights leaves out rows with scenario_id NULL so that
--    (org_id, scenario_id) can be its unique key.
--  * fact_scenario_attempts.started_at is NOT NULL (it always comes from
--    scenario_attempts.started_at, which is NOT NULL), so every MV key column
--    is non-null.
--
-- REFRESH MATERIALIZED VIEW CONCURRENTLY may run inside a function and inside a
-- transaction block (only CREATE INDEX CONCURRENTLY and friends may not); this
-- was verified on PostgreSQL 15, including inside a plpgsql exception block.

-- ---------------------------------------------------------------------------
-- fact_scenario_attempts
-- ---------------------------------------------------------------------------
create table fact_scenario_attempts (
    attempt_id       uuid primary key,
    org_id           uuid not null references orgs (id) on delete cascade,
    user_id          text not null,
    scenario_id      uuid,
    score            numeric,
    duration_seconds integer,
    talk_ms          integer,
    listen_ms        integer,
    started_at       timestamptz not null,
    ended_at         timestamptz,
    date_key         date generated always as ((started_at at time zone 'UTC')::date) stored,
    created_at       timestamptz not null default now()
);
create index idx_fact_attempts_org_date on fact_scenario_attempts (org_id, date_key);
create index idx_fact_attempts_user_date on fact_scenario_attempts (org_id, user_id, date_key);
create index idx_fact_attempts_scenario on fact_scenario_attempts (org_id, scenario_id);
create index idx_fact_attempts_covering on fact_scenario_attempts (org_id, user_id, started_at)
    include (score, duration_seconds);
comment on table fact_scenario_attempts is
    'One row per completed attempt (seed 001), written only by the completion trigger. date_key is the UTC date of started_at.';

alter table fact_scenario_attempts enable row level security;
alter table fact_scenario_attempts force row level security;

create policy fact_scenario_attempts_select on fact_scenario_attempts for select to practice_app
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
-- practice_reporting is the BI role: it reads all orgs by design and is
-- never used by request handlers; hence USING (true).
create policy fact_scenario_attempts_reporting on fact_scenario_attempts for select to practice_reporting
    using (true);

-- Completion trigger writes it; REFRESH reads it as the MV owner.
select practice_owner_policy('fact_scenario_attempts', 'all');

-- ---------------------------------------------------------------------------
-- fact_kpi_events
-- ---------------------------------------------------------------------------
create table fact_kpi_events (
    id           uuid primary key default gen_random_uuid(),
    attempt_id   uuid references scenario_attempts (id) on delete cascade,
    org_id       uuid not null references orgs (id) on delete cascade,
    user_id      text not null,
    scenario_id  uuid,
    event_type   text not null,
    event_value  jsonb,
    timestamp_ms integer,
    created_at   timestamptz not null default now()
);
create index idx_fact_kpi_events_attempt on fact_kpi_events (attempt_id);
create index idx_fact_kpi_events_org_type on fact_kpi_events (org_id, event_type, created_at);
comment on table fact_kpi_events is
    'Event-level KPIs (seed 001): filler_word, interruption, question_asked, ... Filled by the completion trigger from scenario_attempts.kpis->''events''.';

alter table fact_kpi_events enable row level security;
alter table fact_kpi_events force row level security;

create policy fact_kpi_events_select on fact_kpi_events for select to practice_app
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
-- The BI role reads every org by design.
create policy fact_kpi_events_reporting on fact_kpi_events for select to practice_reporting
    using (true);

select practice_owner_policy('fact_kpi_events', 'all');

-- ---------------------------------------------------------------------------
-- dim_time (calendar, not tenant data: no org, no RLS)
-- ---------------------------------------------------------------------------
create table dim_time (
    date_key     date primary key,
    year         integer not null,
    quarter      integer not null,
    month        integer not null,
    week         integer not null,   -- ISO 8601 week number
    day_of_week  integer not null,   -- ISO: 1 = Monday .. 7 = Sunday
    day_of_month integer not null,
    day_of_year  integer not null,
    is_weekend   boolean not null
);
comment on table dim_time is 'Calendar dimension (seed 001), prefilled 2024-01-01 .. 2028-12-31. Global, not tenant data.';

insert into dim_time (date_key, year, quarter, month, week, day_of_week, day_of_month, day_of_year, is_weekend)
select d::date,
       extract(year from d)::integer,
       extract(quarter from d)::integer,
       extract(month from d)::integer,
       extract(week from d)::integer,
       extract(isodow from d)::integer,
       extract(day from d)::integer,
       extract(doy from d)::integer,
       extract(isodow from d) in (6, 7)
  from generate_series(timestamp '2024-01-01', timestamp '2028-12-31', interval '1 day') as g(d);

-- ---------------------------------------------------------------------------
-- Derived-row triggers on scenario_attempts
-- ---------------------------------------------------------------------------

-- Writes fact_kpi_events of one attempt from kpis->'events', a JSON array of
-- {"event_type": text, "event_value": any, "timestamp_ms": int}; elements
-- without an event_type are skipped. Called only from the SECURITY DEFINER
-- triggers below (so it runs as the owner); not executable by the app.
create function practice_write_kpi_events(
    p_attempt_id uuid, p_org_id uuid, p_user_id text, p_scenario_id uuid, p_kpis jsonb)
returns integer
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
    v_rows integer := 0;
begin
    if jsonb_typeof(p_kpis -> 'events') = 'array' then
        insert into fact_kpi_events (attempt_id, org_id, user_id, scenario_id, event_type, event_value, timestamp_ms)
        select p_attempt_id, p_org_id, p_user_id, p_scenario_id,
               e ->> 'event_type', e -> 'event_value', practice_jsonb_int(e, 'timestamp_ms')
          from jsonb_array_elements(p_kpis -> 'events') as t(e)
         where jsonb_typeof(e) = 'object'
           and jsonb_typeof(e -> 'event_type') = 'string'
           and e ->> 'event_type' <> '';
        get diagnostics v_rows = row_count;
    end if;
    return v_rows;
end
$$;
comment on function practice_write_kpi_events(uuid, uuid, text, uuid, jsonb) is
    'Internal (called by the completion triggers): inserts fact_kpi_events rows from kpis->''events''.';
revoke all on function practice_write_kpi_events(uuid, uuid, text, uuid, jsonb) from public;

-- The derived rows of attempts that just became completed: the fact row (ON
-- CONFLICT DO NOTHING), its KPI events, the completion counters in
-- scenario_metadata and user_scenario_progress, and the assignment's
-- completed_at (from its earliest completed attempt). Counters move only for
-- attempts whose fact row this call created, so an attempt completed twice (or
-- completed, reopened, completed) is in the warehouse once and counted once.
-- Set-based, so one submit and a COPY of a million demo attempts use the same
-- SQL. Called only by trigger_populate_fact() (SECURITY DEFINER, so it runs as
-- the owner); not executable by the app.
create function practice_complete_attempts(p_ids uuid[])
returns integer
language sql
security invoker
set search_path = public, pg_temp
as $$
with fresh as (
    insert into fact_scenario_attempts
        (attempt_id, org_id, user_id, scenario_id, score, duration_seconds,
         talk_ms, listen_ms, started_at, ended_at)
    select a.id, a.org_id, a.clerk_user_id, a.scenario_id, a.score, a.duration_seconds,
           practice_jsonb_int(a.kpis, 'talk_ms'), practice_jsonb_int(a.kpis, 'listen_ms'),
           a.started_at, a.ended_at
      from scenario_attempts a
      join unnest(p_ids) as u(id) on u.id = a.id
     where a.status = 'completed'
    on conflict (attempt_id) do nothing
    returning attempt_id
), done as (
    select a.* from scenario_attempts a join fresh f on f.attempt_id = a.id
), kpi_events as (
    insert into fact_kpi_events (attempt_id, org_id, user_id, scenario_id, event_type, event_value, timestamp_ms)
    select a.id, a.org_id, a.clerk_user_id, a.scenario_id,
           e ->> 'event_type', e -> 'event_value', practice_jsonb_int(e, 'timestamp_ms')
      from done a
      cross join lateral jsonb_array_elements(
          case when jsonb_typeof(a.kpis -> 'events') = 'array' then a.kpis -> 'events' else '[]' end) as t(e)
     where jsonb_typeof(e) = 'object'
       and jsonb_typeof(e -> 'event_type') = 'string'
       and e ->> 'event_type' <> ''
), metadata as (
    -- a completion: total_times_used + 1, running average of time
    -- spent, completion_rate = total_times_used / total_attempts * 100.
    insert into scenario_metadata as m
        (org_id, scenario_id, total_attempts, total_times_used, completion_rate,
         time_spent_total_seconds, time_spent_samples, average_time_spent)
    select org_id, scenario_id, count(*), count(*), 100,
           coalesce(sum(duration_seconds), 0), count(duration_seconds),
           round(avg(duration_seconds))::integer
      from done
     group by org_id, scenario_id
    on conflict (org_id, scenario_id) do update
       set total_times_used         = m.total_times_used + excluded.total_times_used,
           completion_rate          = least(round(100.0 * (m.total_times_used + excluded.total_times_used)
                                                  / greatest(m.total_attempts, 1), 2), 100)::real,
           time_spent_total_seconds = m.time_spent_total_seconds + excluded.time_spent_total_seconds,
           time_spent_samples       = m.time_spent_samples + excluded.time_spent_samples,
           average_time_spent       = case when m.time_spent_samples + excluded.time_spent_samples > 0
                                           then round((m.time_spent_total_seconds + excluded.time_spent_total_seconds)::numeric
                                                      / (m.time_spent_samples + excluded.time_spent_samples))::integer
                                      end
), progress as (
    insert into user_scenario_progress as p
        (org_id, user_id, scenario_id, times_attempted, times_completed, last_attempt_at, last_completed_at)
    select org_id, clerk_user_id, scenario_id, count(*), count(*), max(started_at),
           max(coalesce(ended_at, now()))
      from done
     group by org_id, clerk_user_id, scenario_id
    on conflict (org_id, user_id, scenario_id) do update
       set times_completed   = p.times_completed + excluded.times_completed,
           last_completed_at = greatest(p.last_completed_at, excluded.last_completed_at)
), assigned as (
    update assignments s
       set completed_at = f.ended_at
      from (select distinct on (assignment_id) assignment_id, coalesce(ended_at, now()) as ended_at
              from done
             where assignment_id is not null
             order by assignment_id, started_at, id) f
     where s.id = f.assignment_id
       and s.completed_at is null
)
select count(*)::integer from done
$$;
comment on function practice_complete_attempts(uuid[]) is
    'Internal (called by trigger_populate_fact): fact rows, KPI events, completion counters and assignment completion of newly completed attempts, once per attempt.';
revoke all on function practice_complete_attempts(uuid[]) from public;

-- SECURITY DEFINER exception: the completion trigger writes derived rows
-- (fact_scenario_attempts, fact_kpi_events, scenario_metadata,
-- user_scenario_progress, assignments.completed_at) that the app role may only
-- read. Statement-level over the transition tables: on INSERT every completed
-- row, on UPDATE the rows whose status became 'completed'.
create function trigger_populate_fact()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    if tg_op = 'INSERT' then
        perform practice_complete_attempts(
            array(select n.id from new_attempts n where n.status = 'completed'));
    else
        perform practice_complete_attempts(
            array(select n.id from new_attempts n join old_attempts o on o.id = n.id
                   where n.status = 'completed' and o.status is distinct from 'completed'));
    end if;
    return null;
end
$$;
comment on function trigger_populate_fact() is
    'SECURITY DEFINER completion trigger: on the transition to completed writes the fact row, KPI events, completion counters and assignment completion, once per attempt (practice_complete_attempts).';
revoke all on function trigger_populate_fact() from public;

-- Transition tables allow one event per trigger and no column list: two triggers.
create trigger populate_fact_on_completion
    after insert on scenario_attempts
    referencing new table as new_attempts
    for each statement execute function trigger_populate_fact();
create trigger populate_fact_on_status_change
    after update on scenario_attempts
    referencing old table as old_attempts new table as new_attempts
    for each statement execute function trigger_populate_fact();

-- SECURITY DEFINER exception: keeps the derived fact row, KPI events and the
-- time-spent average current when an already completed attempt is scored or
-- timed later (the Vapi end-of-call report often arrives after submit).
-- Counters of completions are not touched.
create function trigger_sync_fact()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    v_d_total   integer := coalesce(new.duration_seconds, 0) - coalesce(old.duration_seconds, 0);
    v_d_samples integer := (new.duration_seconds is not null)::integer - (old.duration_seconds is not null)::integer;
begin
    update fact_scenario_attempts f
       set scenario_id      = new.scenario_id,
           score            = new.score,
           duration_seconds = new.duration_seconds,
           talk_ms          = practice_jsonb_int(new.kpis, 'talk_ms'),
           listen_ms        = practice_jsonb_int(new.kpis, 'listen_ms'),
           started_at       = new.started_at,
           ended_at         = new.ended_at
     where f.attempt_id = new.id;
    if not found then
        return null;   -- not in the warehouse (never transitioned): nothing to sync
    end if;

    if old.kpis is distinct from new.kpis then
        delete from fact_kpi_events e where e.attempt_id = new.id;
        perform practice_write_kpi_events(new.id, new.org_id, new.clerk_user_id, new.scenario_id, new.kpis);
    end if;

    if (v_d_total <> 0 or v_d_samples <> 0) and old.scenario_id = new.scenario_id then
        update scenario_metadata m
           set time_spent_total_seconds = greatest(m.time_spent_total_seconds + v_d_total, 0),
               time_spent_samples       = greatest(m.time_spent_samples + v_d_samples, 0),
               average_time_spent       = case when m.time_spent_samples + v_d_samples > 0
                                               then round(greatest(m.time_spent_total_seconds + v_d_total, 0)::numeric
                                                          / (m.time_spent_samples + v_d_samples))::integer
                                          end
         where m.org_id = new.org_id and m.scenario_id = new.scenario_id;
    end if;
    return null;
end
$$;
comment on function trigger_sync_fact() is
    'SECURITY DEFINER trigger: when a completed attempt''s score, timing, kpis or scenario change, updates its fact row, KPI events and time-spent average.';
revoke all on function trigger_sync_fact() from public;

create trigger sync_fact_on_attempt_change
    after update of score, duration_seconds, kpis, started_at, ended_at, scenario_id on scenario_attempts
    for each row when (old.status = 'completed' and new.status = 'completed')
    execute function trigger_sync_fact();

-- ---------------------------------------------------------------------------
-- Materialized views. No RLS on MVs: the app reads them only
-- through the org-scoped v_* views below; practice_reporting reads them directly.
-- ---------------------------------------------------------------------------
create materialized view mv_leaderboard_month as
select
    org_id,
    user_id,
    date_trunc('month', started_at, 'UTC') as month,
    avg(score) as avg_score,
    count(*) as attempts,
    sum(duration_seconds) as total_duration,
    avg(talk_ms::float / nullif(talk_ms::bigint + listen_ms, 0) * 100) as avg_talk_percentage
from fact_scenario_attempts
where score is not null
group by org_id, user_id, date_trunc('month', started_at, 'UTC');
create unique index mv_leaderboard_month_key on mv_leaderboard_month (org_id, user_id, month);
comment on materialized view mv_leaderboard_month is
    'Monthly (UTC) per-user averages (seed 001). Refreshed by refresh_reporting_views().';

create materialized view mv_org_overview as
select
    org_id,
    count(distinct user_id) as active_users,
    count(*) as total_attempts,
    avg(score) as avg_score,
    max(ended_at) as last_activity,
    count(*) filter (where ended_at >= now() - interval '7 days') as attempts_this_week,
    count(*) filter (where ended_at >= now() - interval '30 days') as attempts_this_month
from fact_scenario_attempts
where ended_at is not null
group by org_id;
create unique index mv_org_overview_key on mv_org_overview (org_id);
comment on materialized view mv_org_overview is
    'Org-wide KPIs for the admin dashboard (seed 001); the week/month windows are as of the last refresh.';

create materialized view mv_scenario_insights as
select
    org_id,
    scenario_id,
    count(*) as attempt_count,
    avg(score) as avg_score,
    stddev(score) as score_stddev,
    avg(duration_seconds) as avg_duration,
    percentile_cont(0.5) within group (order by score) as median_score,
    max(ended_at) as last_attempted
from fact_scenario_attempts
where score is not null
  and scenario_id is not null
group by org_id, scenario_id;
create unique index mv_scenario_insights_key on mv_scenario_insights (org_id, scenario_id);
comment on materialized view mv_scenario_insights is
    'Per-scenario performance of each org (seed 001); high score_stddev hints at an unclear rubric.';

-- Org-scoped windows on the MVs for the app role. security_barrier keeps
-- caller-supplied predicates from being evaluated before the org filter. They
-- run with the view owner's rights on the MV, so practice_app needs no
-- privilege on the mv_* themselves.
create view v_leaderboard_month with (security_barrier = true) as
    select * from mv_leaderboard_month
     where org_id = (select nullif(current_setting('app.org_id', true), '')::uuid);
comment on view v_leaderboard_month is 'mv_leaderboard_month restricted to the context org (app.org_id).';

create view v_org_overview with (security_barrier = true) as
    select * from mv_org_overview
     where org_id = (select nullif(current_setting('app.org_id', true), '')::uuid);
comment on view v_org_overview is 'mv_org_overview restricted to the context org (app.org_id).';

create view v_scenario_insights with (security_barrier = true) as
    select * from mv_scenario_insights
     where org_id = (select nullif(current_setting('app.org_id', true), '')::uuid);
comment on view v_scenario_insights is 'mv_scenario_insights restricted to the context org (app.org_id).';

-- ---------------------------------------------------------------------------
-- refresh_runs: global log of warehouse refreshes (no org)
-- ---------------------------------------------------------------------------
create table refresh_runs (
    id           bigint generated always as identity primary key,
    trigger      text not null check (trigger in ('schedule', 'manual')),
    requested_by text,
    started_at   timestamptz not null default now(),
    finished_at  timestamptz,
    status       text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
    duration_ms  integer,
    error        text
);
create index refresh_runs_started_idx on refresh_runs (started_at desc);
comment on table refresh_runs is
    'One row per refresh_reporting_views() call. Global (not tenant data); written only by that function.';

-- Not tenant data, so RLS is enabled but not forced (the owner, i.e. the
-- definer refresh function, writes it). requested_by holds Clerk user ids of
-- any org, so only admin and system contexts may read the log.
alter table refresh_runs enable row level security;
create policy refresh_runs_select on refresh_runs for select to practice_app
    using ((select nullif(current_setting('app.role', true), '')) in ('admin', 'system'));

-- SECURITY DEFINER exception: REFRESH MATERIALIZED VIEW requires ownership of
-- the MVs, and the log row must be written without giving the app role write
-- access to refresh_runs.
--
-- Refreshes the three MVs CONCURRENTLY (readers are never blocked) under a
-- transaction-scoped advisory lock so two refreshes never overlap (a second
-- caller waits, then refreshes again). Returns the refresh_runs row of this
-- call. A failure does not raise: the MVs roll back to their previous content
-- (all three or none), and the row is returned and committed with
-- status 'failed' and the error text; callers must check status.
-- The row says 'running' only inside the calling transaction: others see it
-- once committed, with its final status.
-- Allowed contexts: app.role 'admin' or 'system', or no context at all
-- (maintenance from psql); any other role raises insufficient_privilege.
create function refresh_reporting_views(p_trigger text default 'manual', p_requested_by text default null)
returns refresh_runs
language plpgsql
volatile
security definer
set search_path = public, pg_temp
as $$
declare
    v_role text := nullif(current_setting('app.role', true), '');
    v_run  refresh_runs;
    v_t0   timestamptz;
begin
    if v_role is not null and v_role not in ('admin', 'system') then
        raise exception 'refresh_reporting_views: role % may not refresh reporting views', v_role
            using errcode = '42501';
    end if;
    if p_trigger is null or p_trigger not in ('schedule', 'manual') then
        raise exception 'refresh_reporting_views: p_trigger must be ''schedule'' or ''manual''' using errcode = '22023';
    end if;

    perform pg_advisory_xact_lock(hashtextextended('practice.refresh_reporting_views', 0));

    v_t0 := clock_timestamp();
    insert into refresh_runs (trigger, requested_by, started_at, status)
    values (p_trigger, coalesce(p_requested_by, nullif(current_setting('app.user_id', true), '')), v_t0, 'running')
    returning * into v_run;

    begin
        refresh materialized view concurrently mv_leaderboard_month;
        refresh materialized view concurrently mv_org_overview;
        refresh materialized view concurrently mv_scenario_insights;

        update refresh_runs r
           set status      = 'succeeded',
               finished_at = clock_timestamp(),
               duration_ms = (extract(epoch from clock_timestamp() - v_t0) * 1000)::integer
         where r.id = v_run.id
        returning * into v_run;
    exception when others then
        update refresh_runs r
           set status      = 'failed',
               finished_at = clock_timestamp(),
               duration_ms = (extract(epoch from clock_timestamp() - v_t0) * 1000)::integer,
               error       = sqlstate || ': ' || sqlerrm
         where r.id = v_run.id
        returning * into v_run;
    end;
    return v_run;
end
$$;
comment on function refresh_reporting_views(text, text) is
    'SECURITY DEFINER: refreshes mv_leaderboard_month, mv_org_overview, mv_scenario_insights CONCURRENTLY under an advisory lock; logs and returns the refresh_runs row (status succeeded|failed).';
revoke all on function refresh_reporting_views(text, text) from public;
