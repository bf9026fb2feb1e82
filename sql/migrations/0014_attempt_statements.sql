-- 0014: the attempt endpoint's hot statements, as SECURITY INVOKER PL/pgSQL.
--
-- Why functions: behind RDS Proxy (or PgBouncer in transaction mode) the
-- functions cannot keep protocol-level prepared statements, so each statement
-- sent as text is planned again on every request; with row-level security and
-- these CTEs that planning costs more than running it. PL/pgSQL caches the
-- plan of each statement it runs in the backend, whatever the client protocol,
-- so a pooled server connection plans each of these once.
--
-- INVOKER: row-level security applies as for any statement of the caller (the
-- context practice_enter() set). Each also filters by p_org_id itself, so the
-- tenant filter holds even where RLS does not (tenancy, twice).
--
-- The write rule of an attempt has one home, attempt_write_verdict(): the
-- single endpoint (one item) and the batch function (many) call the same
-- functions. Rows are locked in id order, so two batches cannot deadlock, and
-- judged on their latest committed version, so a write that lost a race learns
-- the version that beat it in the same round trip.

-- 'ok', or why the caller may not write this attempt's drafts or activity:
-- not visible, not the caller's, no longer in progress, or (when a version is
-- expected) another version.
create function attempt_write_verdict(
    p_found boolean, p_owner text, p_status attempt_status, p_version integer,
    p_caller text, p_expected_version integer)
returns text
language sql
immutable
-- No SET clause: it would stop the planner inlining this into the statements.
as $$
    select case when not p_found then 'not_found'
                when p_owner <> p_caller then 'forbidden'
                when p_status <> 'in_progress' then 'not_in_progress'
                when p_expected_version is not null and p_version <> p_expected_version
                    then 'conflict'
                else 'ok' end
$$;
comment on function attempt_write_verdict(boolean, text, attempt_status, integer, text, integer) is
    'The write rule of an attempt (tenant filtered before): not_found, forbidden, not_in_progress, conflict or ok.';

create function attempt_states(p_org_id uuid, p_ids uuid[])
returns table (
    id uuid, org_id uuid, clerk_user_id text, scenario_id uuid, assignment_id uuid,
    status attempt_status, version integer, answers jsonb, auto_save_data jsonb,
    started_at timestamptz, ended_at timestamptz, duration_seconds integer,
    submitted_at timestamptz, last_activity_at timestamptz, recording_path text,
    vapi_call_id text, updated_at timestamptz)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
begin
    return query
        select a.id, a.org_id, a.clerk_user_id, a.scenario_id, a.assignment_id, a.status,
               a.version, a.answers, a.auto_save_data, a.started_at, a.ended_at,
               a.duration_seconds, a.submitted_at, a.last_activity_at, a.recording_path,
               a.vapi_call_id, a.updated_at
          from scenario_attempts a
         where a.id = any (p_ids) and a.org_id = p_org_id;
end
$$;
comment on function attempt_states(uuid, uuid[]) is
    'The working state (version, drafts, timing) of the visible attempts among p_ids.';

-- p_items: [{ord, attempt_id, expected_version, answers?, auto_save_data?}].
create function attempt_save_drafts(p_org_id uuid, p_user_id text, p_items jsonb)
returns table (
    ord integer, id uuid, verdict text, status attempt_status, version integer,
    updated_at timestamptz)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    with item as (
        select * from jsonb_to_recordset(p_items)
            as i(ord int, attempt_id uuid, expected_version int, answers jsonb,
                 auto_save_data jsonb)
    ),
    locked as (
        select a.id, a.clerk_user_id, a.status, a.version
          from scenario_attempts a
         where a.id in (select attempt_id from item) and a.org_id = p_org_id
         order by a.id
           for update
    ),
    judged as (
        select i.ord, i.attempt_id, i.answers, i.auto_save_data, l.status, l.version,
               attempt_write_verdict(l.id is not null, l.clerk_user_id, l.status, l.version,
                                     p_user_id, i.expected_version) as verdict
          from item i left join locked l on l.id = i.attempt_id
    ),
    saved as (
        update scenario_attempts a
           set answers = coalesce(j.answers, a.answers),
               auto_save_data = coalesce(j.auto_save_data, a.auto_save_data),
               version = a.version + 1,
               last_activity_at = now(),
               updated_at = now()
          from judged j
         where j.verdict = 'ok' and a.id = j.attempt_id and a.org_id = p_org_id
        returning a.id, a.version, a.updated_at
    )
    select j.ord, j.attempt_id, j.verdict, j.status, coalesce(s.version, j.version), s.updated_at
      from judged j left join saved s on s.id = j.attempt_id
     order by j.ord;
end
$$;
comment on function attempt_save_drafts(uuid, text, jsonb) is
    'Seed 004 autosave of any number of attempts: per item ok (new version) or not_found, forbidden, not_in_progress, conflict (current version).';

-- p_items: [{ord, attempt_id, events: [{event_type, payload?, occurred_at?}]}].
-- last_activity_at moves to the latest event, never past now.
create function attempt_log_activity(p_org_id uuid, p_user_id text, p_items jsonb)
returns table (
    ord integer, id uuid, verdict text, status attempt_status, version integer,
    inserted bigint)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    with item as (
        select * from jsonb_to_recordset(p_items) as i(ord int, attempt_id uuid, events jsonb)
    ),
    locked as (
        select a.id, a.org_id, a.clerk_user_id, a.status, a.version
          from scenario_attempts a
         where a.id in (select attempt_id from item) and a.org_id = p_org_id
         order by a.id
           for update
    ),
    judged as (
        select i.ord, i.attempt_id, i.events, l.org_id, l.status, l.version,
               attempt_write_verdict(l.id is not null, l.clerk_user_id, l.status, l.version,
                                     p_user_id, null) as verdict
          from item i left join locked l on l.id = i.attempt_id
    ),
    logged as (
        insert into attempt_activity
            (org_id, attempt_id, user_id, event_type, payload, occurred_at)
        select j.org_id, j.attempt_id, p_user_id, e.event_type,
               coalesce(e.payload, '{}'::jsonb), coalesce(e.occurred_at, now())
          from judged j
         cross join jsonb_to_recordset(j.events)
               as e(event_type text, payload jsonb, occurred_at timestamptz)
         where j.verdict = 'ok'
        returning attempt_id, occurred_at
    ),
    latest as (
        select l.attempt_id, max(l.occurred_at) as occurred_at from logged l group by l.attempt_id
    ),
    touched as (
        update scenario_attempts a
           set last_activity_at = greatest(a.last_activity_at, least(t.occurred_at, now()))
          from latest t
         where a.id = t.attempt_id
        returning a.id
    )
    select j.ord, j.attempt_id, j.verdict, j.status, j.version,
           (select count(*) from logged n where n.attempt_id = j.attempt_id)
      from judged j
     order by j.ord;
end
$$;
comment on function attempt_log_activity(uuid, text, jsonb) is
    'Seed 004 activity log of any number of attempts: per item ok (events inserted) or not_found, forbidden, not_in_progress.';

-- p_items: [{ord, attempt_id, status?, answers?, transcript_text?, score?,
-- score_breakdown?, kpis?, feedback_text?, feedback_json?, manager_comments?}].
-- Ends the in-progress ones; the completion trigger writes the fact row and
-- moves the counters once per row this call ends (`status = 'in_progress'`
-- makes a repeat or a concurrent twin change nothing). Items that did not end
-- now come back with the stored result and what a repeat may carry, to tell a
-- replay from a change.
create function attempt_submit(p_org_id uuid, p_user_id text, p_items jsonb)
returns table (
    ord integer, attempt_id uuid, found boolean, ended_now boolean,
    id uuid, clerk_user_id text, scenario_id uuid, status attempt_status, version integer,
    started_at timestamptz, ended_at timestamptz, duration_seconds integer,
    submitted_at timestamptz, score numeric, score_breakdown jsonb, kpis jsonb,
    feedback_text text, feedback_json jsonb, manager_comments text, scored_by text,
    recording_path text, updated_at timestamptz,
    stored_answers jsonb, stored_transcript_text text)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    with item as (
        select * from jsonb_to_recordset(p_items)
            as i(ord int, attempt_id uuid, status attempt_status, answers jsonb,
                 transcript_text text, score numeric, score_breakdown jsonb, kpis jsonb,
                 feedback_text text, feedback_json jsonb, manager_comments text)
    ),
    locked as (
        select a.*
          from scenario_attempts a
         where a.id in (select attempt_id from item) and a.org_id = p_org_id
         order by a.id
           for update
    ),
    ended as (
        update scenario_attempts a
           set status = coalesce(i.status, 'completed'),
               ended_at = coalesce(a.ended_at, now()),
               submitted_at = now(),
               duration_seconds = greatest(0, round(extract(epoch from now() - a.started_at)))::int,
               answers = coalesce(i.answers, a.answers),
               transcript_text = coalesce(i.transcript_text, a.transcript_text),
               score = coalesce(i.score, a.score),
               score_breakdown = coalesce(i.score_breakdown, a.score_breakdown),
               kpis = coalesce(i.kpis, a.kpis),
               feedback_text = coalesce(i.feedback_text, a.feedback_text),
               feedback_json = coalesce(i.feedback_json, a.feedback_json),
               manager_comments = coalesce(i.manager_comments, a.manager_comments),
               scored_by = case when i.score is not null then p_user_id else a.scored_by end,
               version = a.version + 1,
               updated_at = now()
          from item i join locked l on l.id = i.attempt_id
         where a.id = i.attempt_id and a.org_id = p_org_id and l.status = 'in_progress'
        returning a.*
    )
    select i.ord, i.attempt_id, l.id is not null, e.id is not null,
           case when e.id is not null then e.id else l.id end,
           case when e.id is not null then e.clerk_user_id else l.clerk_user_id end,
           case when e.id is not null then e.scenario_id else l.scenario_id end,
           case when e.id is not null then e.status else l.status end,
           case when e.id is not null then e.version else l.version end,
           case when e.id is not null then e.started_at else l.started_at end,
           case when e.id is not null then e.ended_at else l.ended_at end,
           case when e.id is not null then e.duration_seconds else l.duration_seconds end,
           case when e.id is not null then e.submitted_at else l.submitted_at end,
           case when e.id is not null then e.score else l.score end,
           case when e.id is not null then e.score_breakdown else l.score_breakdown end,
           case when e.id is not null then e.kpis else l.kpis end,
           case when e.id is not null then e.feedback_text else l.feedback_text end,
           case when e.id is not null then e.feedback_json else l.feedback_json end,
           case when e.id is not null then e.manager_comments else l.manager_comments end,
           case when e.id is not null then e.scored_by else l.scored_by end,
           case when e.id is not null then e.recording_path else l.recording_path end,
           case when e.id is not null then e.updated_at else l.updated_at end,
           l.answers, l.transcript_text
      from item i
      left join locked l on l.id = i.attempt_id
      left join ended e on e.id = i.attempt_id
     order by i.ord;
end
$$;
comment on function attempt_submit(uuid, text, jsonb) is
    'Seed 004 submit of any number of attempts: ends the in-progress ones (fact row and counters once), returns each result and whether this call ended it.';

revoke all on function attempt_write_verdict(boolean, text, attempt_status, integer, text, integer) from public;
revoke all on function attempt_states(uuid, uuid[]) from public;
revoke all on function attempt_save_drafts(uuid, text, jsonb) from public;
revoke all on function attempt_log_activity(uuid, text, jsonb) from public;
revoke all on function attempt_submit(uuid, text, jsonb) from public;
grant execute on function attempt_write_verdict(boolean, text, attempt_status, integer, text, integer) to practice_app;
grant execute on function attempt_states(uuid, uuid[]) to practice_app;
grant execute on function attempt_save_drafts(uuid, text, jsonb) to practice_app;
grant execute on function attempt_log_activity(uuid, text, jsonb) to practice_app;
grant execute on function attempt_submit(uuid, text, jsonb) to practice_app;
