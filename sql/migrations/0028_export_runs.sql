-- 0028: exports run by a worker from a queue, streamed by COPY.
--
-- A member asks for an export: the row goes in `pending`, as theirs, carrying
-- the role they asked with (the worker runs the export under that principal,
-- so row-level security decides what the file holds, as it would for their
-- own requests). From then on only the system principal of the export's org
-- changes the row, and only through the state changes below, each guarded in
-- its WHERE clause so that a message delivered twice, or to two workers at
-- once, moves the row once:
--
--   pending ──claim──▶ running ──finish──▶ succeeded
--                        │  ▲
--                        │  └─ claim again once the run's lease ran out
--                        └────fail──────▶ failed (with a reason)
--
-- A run is numbered (run): progress, finish and fail name the run they belong
-- to, so a worker whose lease ran out and was taken over can no longer write.
-- The lease is renewed with each progress report (every part uploaded).
--
-- export_attempt_rows() is the export's SELECT: a plain SQL function the
-- planner inlines into COPY (SELECT ...) TO STDOUT (no SET clause, not STRICT,
-- not SECURITY DEFINER), so the rows stream and RLS of the caller applies.
-- practice_csv_text() neutralises spreadsheet formulas (a text cell starting
-- with =, +, -, @, tab, CR or LF gets a leading single quote); numbers and
-- timestamps stay typed.

alter table exports
    add column requester_role member_role not null default 'trainee',
    add column run integer not null default 0 check (run >= 0),
    add column run_started_at timestamptz,
    add column lease_until timestamptz;
comment on column exports.requester_role is
    'The role the export was requested with: the worker runs the export under it.';
comment on column exports.run is
    'Runs started so far; progress, finish and fail name the run they belong to.';
comment on column exports.lease_until is
    'Until when the running worker holds the export; a redelivery after it takes over.';
comment on column exports.row_count is
    'Rows written: so far while running (updated every part), all of them once succeeded.';

do $policies$
begin
    -- A member asks for their own export, pending, with the role they hold now.
    perform practice_policy('exports', 'exports_insert', 'insert', null,
        format('%s and status = ''pending'' and run = 0 and s3_key is null'
               ' and requester_role::text = (select practice_role())',
               practice_rule('own', 'requested_by')));
    -- Only the worker (the system principal of the export's org) moves it on.
    perform practice_policy('exports', 'exports_update', 'update',
        format('%s and %s', practice_rule('org'), practice_rule('system')),
        format('%s and %s', practice_rule('org'), practice_rule('system')));
end
$policies$;

-- Neutralises a text cell for spreadsheets: a leading =, +, -, @, tab, CR or LF
-- gets a single quote before it. Inlined by the planner (plain SQL, immutable).
create function practice_csv_text(p_value text)
returns text
language sql
immutable
parallel safe
as $$
    select case when left(p_value, 1) in ('=', '+', '-', '@', E'\t', E'\r', E'\n')
                then '''' || p_value
                else p_value
           end
$$;
comment on function practice_csv_text(text) is
    'A text cell safe to open in a spreadsheet: a leading =, +, -, @, tab, CR or LF is prefixed with a single quote.';
revoke all on function practice_csv_text(text) from public;
grant execute on function practice_csv_text(text) to practice_app;

-- The attempts export: completed attempts started on the UTC dates from..to
-- (inclusive), optionally of one scenario, one user, or one manager's team;
-- what the caller may see is row-level security's to say.
create function export_attempt_rows(
    p_from date, p_to date, p_scenario_id uuid, p_user_id text, p_team text)
returns table (
    attempt_id uuid,
    date date,
    user_id text,
    user_name text,
    scenario_id uuid,
    scenario_title text,
    score numeric,
    duration_seconds integer,
    talk_percent numeric,
    started_at timestamptz,
    ended_at timestamptz
)
language sql
stable
as $$
    select f.attempt_id,
           f.date_key,
           practice_csv_text(f.user_id),
           practice_csv_text(u.name),
           f.scenario_id,
           practice_csv_text(s.title),
           f.score,
           f.duration_seconds,
           round(100.0 * f.talk_ms / nullif(f.talk_ms + f.listen_ms, 0), 1),
           f.started_at,
           f.ended_at
      from public.fact_scenario_attempts f
      left join public.dim_users u on u.org_id = f.org_id and u.user_id = f.user_id
      left join public.dim_scenarios s on s.scenario_id = f.scenario_id
     where f.date_key between p_from and p_to
       and (p_scenario_id is null or f.scenario_id = p_scenario_id)
       and (p_user_id is null or f.user_id = p_user_id)
       and (p_team is null or f.user_id in (
               select t.user_id from public.dim_users t
                where t.org_id = f.org_id and t.manager_user_id = p_team))
     order by f.started_at, f.attempt_id
$$;
comment on function export_attempt_rows(date, date, uuid, text, text) is
    'The rows of an attempts export, as the caller may see them (RLS), text cells neutralised; inlined into COPY.';
revoke all on function export_attempt_rows(date, date, uuid, text, text) from public;
grant execute on function export_attempt_rows(date, date, uuid, text, text) to practice_app;

-- Starts a run: a pending export, or a running one whose lease ran out. No row
-- when the export is missing, finished, or running under a live lease.
create function export_claim(p_id uuid, p_lease_seconds integer)
returns setof exports
language sql
volatile
security invoker
as $$
    update exports e
       set status = 'running',
           run = e.run + 1,
           run_started_at = now(),
           lease_until = now() + make_interval(secs => p_lease_seconds),
           row_count = 0,
           bytes = 0,
           error = null
     where e.id = p_id
       and (e.status = 'pending' or (e.status = 'running' and e.lease_until < now()))
    returning e.*
$$;
comment on function export_claim(uuid, integer) is
    'Starts a run of an export that is pending or whose running lease ran out; no row otherwise.';
revoke all on function export_claim(uuid, integer) from public;
grant execute on function export_claim(uuid, integer) to practice_app;

-- Progress of a run: rows and bytes so far, and the lease renewed. False when
-- the run is no longer the export's (taken over, or finished).
create function export_progress(
    p_id uuid, p_run integer, p_rows bigint, p_bytes bigint, p_lease_seconds integer)
returns boolean
language sql
volatile
security invoker
as $$
    with moved as (
        update exports e
           set row_count = p_rows,
               bytes = p_bytes,
               lease_until = now() + make_interval(secs => p_lease_seconds)
         where e.id = p_id and e.run = p_run and e.status = 'running'
        returning 1
    )
    select exists (select 1 from moved)
$$;
comment on function export_progress(uuid, integer, bigint, bigint, integer) is
    'Records a run''s progress and renews its lease; false when the run is no longer the export''s.';
revoke all on function export_progress(uuid, integer, bigint, bigint, integer) from public;
grant execute on function export_progress(uuid, integer, bigint, bigint, integer) to practice_app;

-- The end of a run: succeeded with its file, or failed with a reason. Once per
-- run; false when the run is no longer the export's.
create function export_finish(
    p_id uuid, p_run integer, p_s3_key text, p_rows bigint, p_bytes bigint)
returns boolean
language sql
volatile
security invoker
as $$
    with moved as (
        update exports e
           set status = 'succeeded',
               s3_key = p_s3_key,
               row_count = p_rows,
               bytes = p_bytes,
               completed_at = now(),
               lease_until = null
         where e.id = p_id and e.run = p_run and e.status = 'running'
        returning 1
    )
    select exists (select 1 from moved)
$$;
comment on function export_finish(uuid, integer, text, bigint, bigint) is
    'Marks a run succeeded with its file, once; false when the run is no longer the export''s.';
revoke all on function export_finish(uuid, integer, text, bigint, bigint) from public;
grant execute on function export_finish(uuid, integer, text, bigint, bigint) to practice_app;

create function export_fail(p_id uuid, p_run integer, p_reason text)
returns boolean
language sql
volatile
security invoker
as $$
    with moved as (
        update exports e
           set status = 'failed',
               error = left(p_reason, 1000),
               completed_at = now(),
               lease_until = null
         where e.id = p_id and e.run = p_run and e.status = 'running'
        returning 1
    )
    select exists (select 1 from moved)
$$;
comment on function export_fail(uuid, integer, text) is
    'Marks a run failed with a reason, once; false when the run is no longer the export''s.';
revoke all on function export_fail(uuid, integer, text) from public;
grant execute on function export_fail(uuid, integer, text) to practice_app;
