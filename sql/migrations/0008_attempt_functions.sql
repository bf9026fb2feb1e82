-- 0008_attempt_functions.sql
--
-- What: the SQL functions of the attempt endpoint (where they say "exam",
-- read scenario): get_attempt_statistics, get_active_attempts and
-- validate_attempt_upload, each granted to practice_app here.
--
-- Why: one round trip per operation, under the names its clients know.
--
-- Security: SECURITY INVOKER, so row-level security decides what the caller
-- sees (SECURITY DEFINER does not "enforce RLS":
-- definer runs as the owner and bypasses the caller's policies). Tenancy
-- twice: built-in scenarios are shared by every org, so each function also
-- says "of the caller's org" in its own query.
--
-- A SQL function ships with the feature that calls it: the attempt-tracking
-- functions, the batch operations and the Vapi call lookup arrive with the
-- tracking, batch and webhook functions.

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
     where a.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
       and (p_scenario_id is null or a.scenario_id = p_scenario_id)
$$;
comment on function get_attempt_statistics(uuid) is
    'Seed 004: attempt counts by status, average/median score, average duration and completion rate over visible attempts of a scenario (NULL = all).';
grant execute on function get_attempt_statistics(uuid) to practice_app;

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
     where a.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
       and a.status = 'in_progress'
       and (p_scenario_id is null or a.scenario_id = p_scenario_id)
     order by coalesce(a.last_activity_at, a.updated_at) asc, a.id
$$;
comment on function get_active_attempts(uuid) is
    'Seed 004: visible in-progress attempts (optionally of one scenario) with last activity and idle minutes, most idle first.';
grant execute on function get_active_attempts(uuid) to practice_app;

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
          left join scenario_attempts a
                 on a.id = p_attempt_id and a.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
      ) v
$$;
comment on function validate_attempt_upload(uuid) is
    'Seed 004: whether a recording may be uploaded for the attempt (visible, own or admin, in_progress or completed without recording).';
grant execute on function validate_attempt_upload(uuid) to practice_app;
