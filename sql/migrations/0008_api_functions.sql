-- 0008_api_functions.sql
--
-- What: the SQL functions the seeds name, called by the app as practice_app:
--   seed 000 (attempt tracking): get_user_scenario_attempts,
--     get_user_best_attempts, get_user_score_improvement,
--     get_recent_attempts_comparison, get_attempt_comparison_summary;
--   seed 004 (attempt operations; its "exam" is our scenario):
--     get_attempt_statistics, get_active_attempts, validate_attempt_upload,
--     get_multiple_attempt_states, batch_save_attempts,
--     batch_log_attempt_activity, validate_multiple_attempts,
--     batch_submit_attempts;
--   the webhook's narrow cross-tenant lookup find_attempt_for_vapi_call.
--
-- Why: one round trip per operation, with the seeds' names and parameters.
--
-- Security: every function here except find_attempt_for_vapi_call is
-- SECURITY INVOKER and relies on row-level security for visibility (seed 000's
-- claim that SECURITY DEFINER "enforces RLS" is wrong: definer runs as the
-- owner and bypasses the caller's policies). Where a seed signature takes
-- p_org_id it is applied as an additional filter, never as the only one.
--
-- Definitions (seed 000), all over completed attempts of one user:
--   first  = earliest started_at;  latest = most recent started_at;
--   best   = highest score, ties -> most recent (score DESC, started_at DESC);
--   attempt_number = 1-based chronological position among completed attempts
--   of that user on that scenario.

-- ---------------------------------------------------------------------------
-- seed 000
-- ---------------------------------------------------------------------------

create function get_user_scenario_attempts(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid, p_limit integer default 50)
returns table (
    attempt_id       uuid,
    scenario_id      uuid,
    attempt_number   integer,
    started_at       timestamptz,
    ended_at         timestamptz,
    duration_seconds integer,
    score            numeric,
    score_breakdown  jsonb,
    kpis             jsonb,
    feedback_text    text,
    recording_url    text)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select h.id, h.scenario_id, h.attempt_number, h.started_at, h.ended_at, h.duration_seconds,
           h.score, h.score_breakdown, h.kpis, h.feedback_text, h.recording_url
      from (
        select a.id, a.scenario_id, a.started_at, a.ended_at, a.duration_seconds, a.score,
               a.score_breakdown, a.kpis, a.feedback_text, a.recording_url,
               row_number() over (order by a.started_at, a.id)::integer as attempt_number
          from scenario_attempts a
         where a.org_id = p_org_id
           and a.clerk_user_id = p_clerk_user_id
           and a.scenario_id = p_scenario_id
           and a.status = 'completed'
      ) h
     order by h.started_at desc, h.id desc
     limit least(greatest(coalesce(p_limit, 50), 1), 500)
$$;
comment on function get_user_scenario_attempts(uuid, text, uuid, integer) is
    'Seed 000: completed attempts of a user on a scenario, newest first, with chronological attempt_number; p_limit clamped to 1..500.';

create function get_user_best_attempts(p_org_id uuid, p_clerk_user_id text)
returns table (
    scenario_id       uuid,
    best_attempt_id   uuid,
    best_score        numeric,
    best_attempt_date timestamptz,
    scenario_title    text,
    scored_attempts   integer)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select distinct on (a.scenario_id)
           a.scenario_id, a.id, a.score, a.started_at, s.title,
           (count(*) over (partition by a.scenario_id))::integer
      from scenario_attempts a
      left join scenarios s on s.id = a.scenario_id
     where a.org_id = p_org_id
       and a.clerk_user_id = p_clerk_user_id
       and a.status = 'completed'
       and a.score is not null
     order by a.scenario_id, a.score desc, a.started_at desc, a.id desc
$$;
comment on function get_user_best_attempts(uuid, text) is
    'Seed 000: best completed attempt per scenario of a user (highest score, ties -> most recent).';

-- improvement_trend rule: compare this attempt's 3-attempt moving average with
-- the previous attempt's (same scenario): more than +2 points -> 'improving',
-- less than -2 points -> 'declining', otherwise (and for the first attempt)
-- 'stable'. score_delta = score - previous score (NULL for the first).
-- percentile_rank = percent_rank of this score among all the user's scored
-- completed attempts on that scenario, 0..100. History before the
-- p_days_back window still counts for numbering, deltas and averages; only
-- the returned rows are limited to the window.
create function get_user_score_improvement(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid default null, p_days_back integer default 90)
returns table (
    attempt_id        uuid,
    scenario_id       uuid,
    attempt_date      timestamptz,
    score             numeric,
    attempt_number    integer,
    score_delta       numeric,
    moving_avg_3      numeric,
    percentile_rank   numeric,
    improvement_trend text)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    with hist as (
        select a.id, a.scenario_id, a.started_at, a.score,
               row_number() over w as attempt_number,
               a.score - lag(a.score) over w as score_delta,
               avg(a.score) over (w rows between 2 preceding and current row) as moving_avg_3,
               percent_rank() over (partition by a.scenario_id order by a.score) as pct
          from scenario_attempts a
         where a.org_id = p_org_id
           and a.clerk_user_id = p_clerk_user_id
           and a.status = 'completed'
           and a.score is not null
           and (p_scenario_id is null or a.scenario_id = p_scenario_id)
        window w as (partition by a.scenario_id order by a.started_at, a.id)
    ), trend as (
        select h.*,
               h.moving_avg_3 - lag(h.moving_avg_3) over (partition by h.scenario_id order by h.started_at, h.id) as ma_change
          from hist h
    )
    select t.id, t.scenario_id, t.started_at, t.score, t.attempt_number::integer,
           round(t.score_delta, 2), round(t.moving_avg_3, 2), round((t.pct * 100)::numeric, 2),
           case when t.ma_change > 2 then 'improving'
                when t.ma_change < -2 then 'declining'
                else 'stable' end
      from trend t
     where t.started_at >= now() - make_interval(days => greatest(coalesce(p_days_back, 90), 0))
     order by t.scenario_id, t.started_at, t.id
$$;
comment on function get_user_score_improvement(uuid, text, uuid, integer) is
    'Seed 000: per-attempt score delta, 3-attempt moving average, percentile rank and trend (+-2 points on the moving average) over the last p_days_back days.';

-- is_best_score / is_latest / rank_by_score are computed per scenario over all
-- of the user's completed attempts (not only the returned ones).
create function get_recent_attempts_comparison(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid default null, p_limit integer default 5)
returns table (
    attempt_id    uuid,
    scenario_id   uuid,
    started_at    timestamptz,
    score         numeric,
    is_best_score boolean,
    is_latest     boolean,
    rank_by_score integer)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select r.id, r.scenario_id, r.started_at, r.score,
           (r.best_rn = 1 and r.score is not null), r.recent_rn = 1, r.score_rank::integer
      from (
        select a.id, a.scenario_id, a.started_at, a.score,
               row_number() over (partition by a.scenario_id
                                  order by a.score desc nulls last, a.started_at desc, a.id desc) as best_rn,
               row_number() over (partition by a.scenario_id order by a.started_at desc, a.id desc) as recent_rn,
               rank() over (partition by a.scenario_id order by a.score desc nulls last) as score_rank
          from scenario_attempts a
         where a.org_id = p_org_id
           and a.clerk_user_id = p_clerk_user_id
           and a.status = 'completed'
           and (p_scenario_id is null or a.scenario_id = p_scenario_id)
      ) r
     order by r.started_at desc, r.id desc
     limit least(greatest(coalesce(p_limit, 5), 1), 100)
$$;
comment on function get_recent_attempts_comparison(uuid, text, uuid, integer) is
    'Seed 000: the user''s N most recent completed attempts with best/latest flags and score rank within their scenario; p_limit clamped to 1..100.';

-- One row when the scenario is visible to the caller, none otherwise.
-- Statistics use completed attempts with a score; total_practice_seconds sums
-- duration_seconds over all attempts (abandoned calls were practice too);
-- improvement_percentage = (latest - first) / first * 100, NULL when the first
-- score is 0 or NULL or there is no latest score.
create function get_attempt_comparison_summary(p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid)
returns table (
    scenario_id            uuid,
    scenario_title         text,
    total_attempts         integer,
    completed_attempts     integer,
    first_attempt_id       uuid,
    first_score            numeric,
    first_date             timestamptz,
    best_attempt_id        uuid,
    best_score             numeric,
    best_date              timestamptz,
    latest_attempt_id      uuid,
    latest_score           numeric,
    latest_date            timestamptz,
    average_score          numeric,
    median_score           numeric,
    score_std_dev          numeric,
    total_practice_seconds bigint,
    improvement_percentage numeric)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    with att as (
        select a.id, a.status, a.score, a.started_at, a.duration_seconds
          from scenario_attempts a
         where a.org_id = p_org_id
           and a.clerk_user_id = p_clerk_user_id
           and a.scenario_id = p_scenario_id
    ), comp as (
        select * from att where att.status = 'completed'
    ), first_a as (
        select c.id, c.score, c.started_at from comp c order by c.started_at asc, c.id asc limit 1
    ), best_a as (
        select c.id, c.score, c.started_at from comp c where c.score is not null
         order by c.score desc, c.started_at desc, c.id desc limit 1
    ), latest_a as (
        select c.id, c.score, c.started_at from comp c order by c.started_at desc, c.id desc limit 1
    ), stats as (
        select avg(c.score) as avg_score,
               percentile_cont(0.5) within group (order by c.score) as median,
               stddev_samp(c.score) as sd
          from comp c where c.score is not null
    ), totals as (
        select count(*)::integer as total,
               (count(*) filter (where att.status = 'completed'))::integer as completed,
               coalesce(sum(att.duration_seconds), 0)::bigint as secs
          from att
    )
    select s.id, s.title, t.total, t.completed,
           f.id, f.score, f.started_at,
           b.id, b.score, b.started_at,
           l.id, l.score, l.started_at,
           round(st.avg_score, 2), round(st.median::numeric, 2), round(st.sd, 2),
           t.secs,
           case when f.score is null or f.score = 0 or l.score is null then null
                else round((l.score - f.score) / f.score * 100, 2) end
      from scenarios s
     cross join totals t
     cross join stats st
      left join first_a f on true
      left join best_a b on true
      left join latest_a l on true
     where s.id = p_scenario_id
$$;
comment on function get_attempt_comparison_summary(uuid, text, uuid) is
    'Seed 000: first/best/latest attempt, average/median/stddev, practice time and improvement percentage of a user on a scenario.';

-- ---------------------------------------------------------------------------
-- seed 004
-- ---------------------------------------------------------------------------

-- Over the attempts visible to the caller (trainee: own; manager: team;
-- admin: org). p_scenario_id NULL = all scenarios. Scores and durations are
-- of completed attempts; completion_rate = completed / total * 100, NULL when
-- there is no attempt.
create function get_attempt_statistics(p_scenario_id uuid)
returns table (
    scenario_id              uuid,
    total_attempts           integer,
    in_progress_attempts     integer,
    completed_attempts       integer,
    abandoned_attempts       integer,
    failed_attempts          integer,
    average_score            numeric,
    median_score             numeric,
    average_duration_seconds numeric,
    completion_rate          numeric)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select p_scenario_id,
           count(*)::integer,
           (count(*) filter (where a.status = 'in_progress'))::integer,
           (count(*) filter (where a.status = 'completed'))::integer,
           (count(*) filter (where a.status = 'abandoned'))::integer,
           (count(*) filter (where a.status = 'failed'))::integer,
           round(avg(a.score) filter (where a.status = 'completed'), 2),
           round((percentile_cont(0.5) within group (order by a.score)
                    filter (where a.status = 'completed' and a.score is not null))::numeric, 2),
           round(avg(a.duration_seconds) filter (where a.status = 'completed'), 2),
           case when count(*) = 0 then null
                else round(100.0 * count(*) filter (where a.status = 'completed') / count(*), 2) end
      from scenario_attempts a
     where p_scenario_id is null or a.scenario_id = p_scenario_id
$$;
comment on function get_attempt_statistics(uuid) is
    'Seed 004: attempt counts by status, average/median score, average duration and completion rate over visible attempts of a scenario (NULL = all).';

create function get_active_attempts(p_scenario_id uuid default null)
returns table (
    attempt_id       uuid,
    clerk_user_id    text,
    display_name     text,
    scenario_id      uuid,
    scenario_title   text,
    started_at       timestamptz,
    last_activity_at timestamptz,
    idle_minutes     integer)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select a.id, a.clerk_user_id, m.display_name, a.scenario_id, s.title, a.started_at,
           coalesce(a.last_activity_at, a.updated_at),
           greatest(floor(extract(epoch from now() - coalesce(a.last_activity_at, a.updated_at)) / 60), 0)::integer
      from scenario_attempts a
      left join org_members m on m.org_id = a.org_id and m.user_id = a.clerk_user_id
      left join scenarios s on s.id = a.scenario_id
     where a.status = 'in_progress'
       and (p_scenario_id is null or a.scenario_id = p_scenario_id)
     order by coalesce(a.last_activity_at, a.updated_at) asc, a.id
$$;
comment on function get_active_attempts(uuid) is
    'Seed 004: visible in-progress attempts (optionally of one scenario) with last activity and idle minutes, most idle first.';

-- A recording may be attached when the attempt is visible, belongs to the
-- caller (admins and the system context may act for anyone in the org), and
-- is either in_progress or completed without a recording yet (the recording
-- usually arrives after submit). Reasons: 'not_found', 'not_owner',
-- 'recording_already_uploaded', 'invalid_status' (abandoned/failed);
-- NULL when valid.
create function validate_attempt_upload(p_attempt_id uuid)
returns table (
    valid         boolean,
    reason        text,
    attempt_id    uuid,
    status        attempt_status,
    org_id        uuid,
    clerk_user_id text)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select v.reason is null, v.reason, p_attempt_id, v.status, v.org_id, v.clerk_user_id
      from (
        select a.status, a.org_id, a.clerk_user_id,
               case
                   when a.id is null then 'not_found'
                   when not (coalesce(a.clerk_user_id = (select nullif(current_setting('app.user_id', true), '')), false)
                             or coalesce((select nullif(current_setting('app.role', true), '')) in ('admin', 'system'), false))
                        then 'not_owner'
                   when a.status = 'in_progress' then null
                   when a.status = 'completed' and a.recording_path is null then null
                   when a.status = 'completed' then 'recording_already_uploaded'
                   else 'invalid_status'
               end as reason
          from (select 1) as one
          left join scenario_attempts a on a.id = p_attempt_id
      ) v
$$;
comment on function validate_attempt_upload(uuid) is
    'Seed 004: whether a recording may be uploaded for the attempt (visible, own or admin, in_progress or completed without recording).';

create function get_multiple_attempt_states(p_attempt_ids uuid[])
returns table (
    id               uuid,
    status           attempt_status,
    version          integer,
    answers          jsonb,
    auto_save_data   jsonb,
    started_at       timestamptz,
    ended_at         timestamptz,
    duration_seconds integer,
    updated_at       timestamptz)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select a.id, a.status, a.version, a.answers, a.auto_save_data,
           a.started_at, a.ended_at, a.duration_seconds, a.updated_at
      from scenario_attempts a
     where a.id = any (p_attempt_ids)
     order by array_position(p_attempt_ids, a.id)
$$;
comment on function get_multiple_attempt_states(uuid[]) is
    'Seed 004: state (status, version, drafts, timing) of the visible attempts among p_attempt_ids, in input order; invisible ids are omitted.';

-- Each operation: {"attempt_id": uuid, "expected_version": int,
-- "answers"?: json, "auto_save_data"?: json}. Applied in array order, each as
-- a conditional update (version = expected_version and status = 'in_progress')
-- that replaces the given drafts, bumps version and updated_at. Absent or JSON
-- null answers/auto_save_data keep the stored value. One row per operation:
-- success with new_version, or error 'not_found' (missing or not visible),
-- 'not_in_progress', 'version_conflict' (current_version tells the caller
-- where it stands) or 'invalid_operation' (malformed item). One bad item never
-- aborts the others.
create function batch_save_attempts(p_operations jsonb)
returns table (
    attempt_id      uuid,
    success         boolean,
    new_version     integer,
    current_version integer,
    error           text)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    v_op       jsonb;
    v_id       uuid;
    v_expected integer;
    v_new      integer;
    v_status   attempt_status;
    v_cur      integer;
begin
    if p_operations is null or jsonb_typeof(p_operations) <> 'array' then
        raise exception 'p_operations must be a JSON array' using errcode = '22023';
    end if;

    for v_op in select t.e from jsonb_array_elements(p_operations) with ordinality as t(e, n) order by t.n loop
        attempt_id := null; success := false; new_version := null; current_version := null; error := null;

        v_id := case when jsonb_typeof(v_op) = 'object' and jsonb_typeof(v_op -> 'attempt_id') = 'string'
                     then practice_try_uuid(v_op ->> 'attempt_id') end;
        attempt_id := v_id;
        if v_id is null
           or jsonb_typeof(v_op -> 'expected_version') is distinct from 'number'
           or (v_op ->> 'expected_version') !~ '^[0-9]{1,9}$' then
            error := 'invalid_operation';
            return next;
            continue;
        end if;
        v_expected := (v_op ->> 'expected_version')::integer;

        update scenario_attempts a
           set answers        = case when coalesce(jsonb_typeof(v_op -> 'answers'), 'null') <> 'null'
                                     then v_op -> 'answers' else a.answers end,
               auto_save_data = case when coalesce(jsonb_typeof(v_op -> 'auto_save_data'), 'null') <> 'null'
                                     then v_op -> 'auto_save_data' else a.auto_save_data end,
               version        = a.version + 1,
               updated_at     = now()
         where a.id = v_id
           and a.version = v_expected
           and a.status = 'in_progress'
        returning a.version into v_new;

        if found then
            success := true;
            new_version := v_new;
            current_version := v_new;
        else
            select a.status, a.version into v_status, v_cur
              from scenario_attempts a
             where a.id = v_id;
            if not found then
                error := 'not_found';
            elsif v_status <> 'in_progress' then
                error := 'not_in_progress';
                current_version := v_cur;
            else
                error := 'version_conflict';
                current_version := v_cur;
            end if;
        end if;
        return next;
    end loop;
end
$$;
comment on function batch_save_attempts(jsonb) is
    'Seed 004: per-operation optimistic save of answers/auto_save_data (expected_version, in_progress only); returns success/new_version or not_found|version_conflict|not_in_progress|invalid_operation.';

-- p_batch: [{"attempt_id": uuid, "events": [{"event_type": text,
-- "payload"?: object, "occurred_at"?: timestamptz text}, ...]}, ...].
-- Events are logged with user_id = the context user and the attempt's org.
-- All events of one item are inserted or none; errors per item: 'invalid_item',
-- 'not_found', 'invalid_event' (missing event_type, bad occurred_at),
-- 'forbidden' (row-level security refused the insert).
create function batch_log_attempt_activity(p_batch jsonb)
returns table (
    attempt_id     uuid,
    inserted_count integer,
    error          text)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    v_item   jsonb;
    v_id     uuid;
    v_org    uuid;
    v_events jsonb;
    v_rows   integer;
begin
    if p_batch is null or jsonb_typeof(p_batch) <> 'array' then
        raise exception 'p_batch must be a JSON array' using errcode = '22023';
    end if;

    for v_item in select t.e from jsonb_array_elements(p_batch) with ordinality as t(e, n) order by t.n loop
        attempt_id := null; inserted_count := 0; error := null;

        v_id := case when jsonb_typeof(v_item) = 'object' and jsonb_typeof(v_item -> 'attempt_id') = 'string'
                     then practice_try_uuid(v_item ->> 'attempt_id') end;
        attempt_id := v_id;
        v_events := case when jsonb_typeof(v_item) = 'object' then v_item -> 'events' end;
        if v_id is null or jsonb_typeof(v_events) is distinct from 'array' then
            error := 'invalid_item';
            return next;
            continue;
        end if;

        select a.org_id into v_org from scenario_attempts a where a.id = v_id;
        if not found then
            error := 'not_found';
            return next;
            continue;
        end if;

        if exists (select 1 from jsonb_array_elements(v_events) as t(e)
                    where jsonb_typeof(t.e) is distinct from 'object'
                       or jsonb_typeof(t.e -> 'event_type') is distinct from 'string'
                       or t.e ->> 'event_type' = ''
                       or coalesce(jsonb_typeof(t.e -> 'payload'), 'null') not in ('object', 'null')
                       or coalesce(jsonb_typeof(t.e -> 'occurred_at'), 'null') not in ('string', 'null')) then
            error := 'invalid_event';
            return next;
            continue;
        end if;

        begin
            insert into attempt_activity (org_id, attempt_id, user_id, event_type, payload, occurred_at)
            select v_org, v_id, nullif(current_setting('app.user_id', true), ''),
                   t.e ->> 'event_type',
                   coalesce(case when jsonb_typeof(t.e -> 'payload') = 'object' then t.e -> 'payload' end, '{}'::jsonb),
                   coalesce((t.e ->> 'occurred_at')::timestamptz, now())
              from jsonb_array_elements(v_events) with ordinality as t(e, n)
             order by t.n;
            get diagnostics v_rows = row_count;
            inserted_count := v_rows;
        exception
            when invalid_datetime_format or datetime_field_overflow or invalid_text_representation then
                error := 'invalid_event';
            when insufficient_privilege then
                error := 'forbidden';
        end;
        return next;
    end loop;
end
$$;
comment on function batch_log_attempt_activity(jsonb) is
    'Seed 004: logs activity events for several visible attempts in one call; returns inserted_count or an error per attempt.';

-- valid = visible and in_progress; reason 'not_found' or 'not_in_progress'
-- (NULL when valid). One row per input element, in input order.
create function validate_multiple_attempts(p_attempt_ids uuid[])
returns table (
    attempt_id uuid,
    valid      boolean,
    reason     text)
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select u.id,
           a.id is not null and a.status = 'in_progress',
           case when a.id is null then 'not_found'
                when a.status <> 'in_progress' then 'not_in_progress' end
      from unnest(p_attempt_ids) with ordinality as u(id, n)
      left join scenario_attempts a on a.id = u.id
     order by u.n
$$;
comment on function validate_multiple_attempts(uuid[]) is
    'Seed 004: per attempt id, whether it is visible and still in progress (submittable).';

-- Submits each visible in_progress attempt: status completed, ended_at (kept
-- if already set, else now()), duration_seconds (kept if set, else
-- ended_at - started_at), submitted_at, version + 1. Already completed
-- attempts succeed without change (idempotent); others fail with
-- 'not_found' or 'not_in_progress'. The completion trigger fires per
-- submitted attempt (fact row, counters). One row per input id, in order.
create function batch_submit_attempts(p_attempt_ids uuid[])
returns table (
    attempt_id uuid,
    success    boolean,
    status     attempt_status,
    error      text)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    v_id     uuid;
    v_status attempt_status;
begin
    for v_id in select u.id from unnest(coalesce(p_attempt_ids, '{}'::uuid[])) with ordinality as u(id, n) order by u.n loop
        attempt_id := v_id; success := false; status := null; error := null;

        update scenario_attempts a
           set status           = 'completed',
               ended_at         = coalesce(a.ended_at, now()),
               duration_seconds = coalesce(a.duration_seconds,
                                           greatest(floor(extract(epoch from coalesce(a.ended_at, now()) - a.started_at)), 0)::integer),
               submitted_at     = coalesce(a.submitted_at, now()),
               version          = a.version + 1,
               updated_at       = now()
         where a.id = v_id
           and a.status = 'in_progress'
        returning a.status into v_status;

        if found then
            success := true;
            status := v_status;
        else
            select a.status into v_status from scenario_attempts a where a.id = v_id;
            if not found then
                error := 'not_found';
            elsif v_status = 'completed' then
                success := true;
                status := v_status;
            else
                status := v_status;
                error := 'not_in_progress';
            end if;
        end if;
        return next;
    end loop;
end
$$;
comment on function batch_submit_attempts(uuid[]) is
    'Seed 004: completes visible in-progress attempts (ended_at, duration, submitted_at, version+1); idempotent for completed ones.';

-- ---------------------------------------------------------------------------
-- The one cross-tenant lookup
-- ---------------------------------------------------------------------------

-- SECURITY DEFINER exception: the Vapi webhook only knows the call id (and,
-- from the call's metadata, possibly the attempt id) before it knows the org,
-- so it cannot read scenario_attempts under RLS. This function is the single
-- narrow crossing: it answers only in a 'system' context, returns only the
-- routing triple (attempt id, org id, Clerk user id), and never any content.
-- The webhook then sets app.org_id to the returned org and works under RLS.
-- Match: the attempt with this vapi_call_id; failing that, the attempt with
-- id p_attempt_id if it has no call id yet (or the same one). At most one row.
create function find_attempt_for_vapi_call(p_vapi_call_id text, p_attempt_id uuid default null)
returns table (
    attempt_id    uuid,
    org_id        uuid,
    clerk_user_id text)
language sql
stable
security definer
set search_path = public, pg_temp
as $$
    select a.id, a.org_id, a.clerk_user_id
      from scenario_attempts a
     where (select nullif(current_setting('app.role', true), '')) = 'system'
       and ((p_vapi_call_id is not null and a.vapi_call_id = p_vapi_call_id)
            or (p_attempt_id is not null
                and a.id = p_attempt_id
                and (a.vapi_call_id is null or a.vapi_call_id = p_vapi_call_id)))
     order by (a.vapi_call_id is not distinct from p_vapi_call_id) desc
     limit 1
$$;
comment on function find_attempt_for_vapi_call(text, uuid) is
    'SECURITY DEFINER (narrow, system context only): routes a Vapi call to its attempt, returning only attempt id, org id and Clerk user id.';
revoke all on function find_attempt_for_vapi_call(text, uuid) from public;
