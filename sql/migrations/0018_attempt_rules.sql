-- 0018: one verdict per attempt action, in one home.
--
-- attempt_verdict() decides every action on an attempt: save, activity,
-- submit (end, clean up, score), upload (request and confirm) and the batch
-- `validate`, which asks what a bare submit would do. Every statement that
-- acts on an attempt (the single endpoint, the batch function, the webhooks)
-- locks the row, asks the verdict and writes in one transaction, so no check
-- and write can be separated by another writer.
--
-- Who may do what to an attempt the caller can see (visibility itself is the
-- policies' business: org, team, own):
--
--   owner   the member who practises it: drafts, activity, recording, ends it
--           (completed or abandoned); never scores it (no self-scoring).
--   coach   an admin of the org or the owner's manager: scores it once it has
--           completed; cleans it up (ends it as abandoned, sending nothing of
--           the trainee's: no answers, no transcript, no score) while it is in
--           progress; never writes drafts, activity or recordings.
--   system  the voice call acting for the owner (webhooks): ends it, logs its
--           activity, attaches its recording, scores it from the call's analysis.
--
-- The role order (admin > manager > trainee) has its home in the member_role
-- enum (0001): resolve_principal() and practice_enter() compare roles there.
--
-- Also here:
--   * the request context read through three inlinable helpers;
--   * ended_by: who ended an attempt (the owner, a coach cleaning up, the system);
--   * vapi_call_id unique per org, not across the database: a trainee of one
--     org must not learn that another org's call id exists, nor claim it first;
--   * attempt_start(): the rule of starting, beside the others;
--   * every hot statement reaches scenario_attempts by its primary key
--     whatever the statistics (see "The hot statements" below).

-- ---------------------------------------------------------------------------
-- The request context (set transaction-locally by practice_enter, 0011)
-- ---------------------------------------------------------------------------
-- No SET clause and SQL language: the planner inlines them, and a policy that
-- writes `(select practice_org())` evaluates it once per statement.
create function practice_org() returns uuid
language sql stable parallel safe
as $$ select nullif(current_setting('app.org_id', true), '')::uuid $$;
create function practice_user() returns text
language sql stable parallel safe
as $$ select nullif(current_setting('app.user_id', true), '') $$;
create function practice_role() returns text
language sql stable parallel safe
as $$ select nullif(current_setting('app.role', true), '') $$;
comment on function practice_org() is 'The request''s org (app.org_id), NULL without a context.';
comment on function practice_user() is 'The request''s user (app.user_id), NULL without a context.';
comment on function practice_role() is 'The request''s role (app.role: admin, manager, trainee, system), NULL without a context.';
revoke all on function practice_org() from public;
revoke all on function practice_user() from public;
revoke all on function practice_role() from public;
grant execute on function practice_org() to practice_app;
grant execute on function practice_user() to practice_app;
grant execute on function practice_role() to practice_app;

-- ---------------------------------------------------------------------------
-- Columns and indexes
-- ---------------------------------------------------------------------------
alter table scenario_attempts add column ended_by text;
comment on column scenario_attempts.ended_by is
    'Who ended the attempt: its owner, a coach who cleaned it up (abandoned), or the system (the call).';

-- An activity row is visible as its attempt is (0020's policies): it carries
-- the attempt's owner, set from the locked attempt by the statement that logs it.
alter table attempt_activity add column owner_user_id text;
update attempt_activity e set owner_user_id = a.clerk_user_id
  from scenario_attempts a where a.id = e.attempt_id;
alter table attempt_activity alter column owner_user_id set not null;
comment on column attempt_activity.owner_user_id is
    'The owner of the attempt the event belongs to (who may see it follows from it).';

drop index idx_scenario_attempts_vapi_call_id;
create unique index idx_scenario_attempts_org_vapi_call_id on scenario_attempts (org_id, vapi_call_id)
    where vapi_call_id is not null;

-- ---------------------------------------------------------------------------
-- The verdict
-- ---------------------------------------------------------------------------
-- p_action: save | activity | submit | upload. For submit: p_requested_status
-- (NULL: completed), whether the trainee's work (answers, transcript) or
-- scoring fields were sent, and whether an ending field differs from what an
-- ended attempt holds. Answers, per action:
--   every action   not_found, forbidden
--   save           ok, not_in_progress, conflict (another version)
--   activity       ok, not_in_progress, out_of_range (an event said to have
--                  happened before the attempt started or after now, each
--                  beyond a clock skew of five minutes)
--   upload         ok, invalid_status (abandoned, failed), recording_already_uploaded
--   submit         ended (this call ends it), scored (this call scores it),
--                  ended_before (a repeat: nothing changes), changed (an ended
--                  attempt's status, answers or transcript would change),
--                  not_completed (scoring fields before it completed)
-- No SET clause: the statements below inline it.
create function attempt_verdict(
    p_action text,
    p_found boolean,
    p_owner text,
    p_status attempt_status,
    p_caller text,
    p_role text,
    p_version integer default null,
    p_expected_version integer default null,
    p_has_recording boolean default false,
    p_requested_status attempt_status default null,
    p_sends_work boolean default false,
    p_sends_scoring boolean default false,
    p_changed boolean default false,
    p_timely boolean default true)
returns text
language sql
immutable
as $$
    select case
        when not p_found then 'not_found'
        when p_owner is distinct from p_caller and p_role not in ('admin', 'manager', 'system')
            then 'forbidden'
        when p_action = 'save' then
            case when p_owner is distinct from p_caller then 'forbidden'
                 when p_status <> 'in_progress' then 'not_in_progress'
                 when p_version is distinct from p_expected_version then 'conflict'
                 else 'ok' end
        when p_action = 'activity' then
            case when p_owner is distinct from p_caller and p_role <> 'system' then 'forbidden'
                 when p_status <> 'in_progress' then 'not_in_progress'
                 when not p_timely then 'out_of_range'
                 else 'ok' end
        when p_action = 'upload' then
            case when p_owner is distinct from p_caller and p_role <> 'system' then 'forbidden'
                 when p_status in ('abandoned', 'failed') then 'invalid_status'
                 when p_has_recording then 'recording_already_uploaded'
                 else 'ok' end
        when p_action = 'submit' then
            case
                -- A coach never does the trainee's work, and nobody scores their own.
                when p_owner is distinct from p_caller and p_role in ('admin', 'manager')
                     and p_sends_work then 'forbidden'
                when p_owner = p_caller and p_sends_scoring then 'forbidden'
                when p_status = 'in_progress' then
                    case when p_sends_scoring then 'not_completed'
                         -- A coach ends a trainee's live attempt only to clean it up.
                         when p_owner is distinct from p_caller and p_role in ('admin', 'manager')
                              and p_requested_status is distinct from 'abandoned' then 'forbidden'
                         else 'ended' end
                when p_changed then 'changed'
                when p_sends_scoring and p_status = 'completed' then 'scored'
                when p_sends_scoring then 'not_completed'
                else 'ended_before'
            end
        else 'unknown_action'
    end
$$;
comment on function attempt_verdict(text, boolean, text, attempt_status, text, text, integer, integer, boolean, attempt_status, boolean, boolean, boolean, boolean) is
    'The one rule of every action on an attempt (save, activity, submit, upload) for the owner, a coach (admin, the owner''s manager) and the system.';

-- ---------------------------------------------------------------------------
-- start
-- ---------------------------------------------------------------------------
-- Anyone practises as themselves, on an active scenario of their org or a
-- built-in one, under an assignment (if any) that is theirs for that
-- scenario, with a call id not linked to another attempt of the org.
-- Answers the verdict (ok, scenario_not_found, assignment_not_found,
-- call_linked) beside the new attempt's state (NULLs on a refusal).
create function attempt_start(
    p_org_id uuid, p_user_id text, p_scenario_id uuid, p_assignment_id uuid,
    p_vapi_call_id text, p_metadata jsonb)
returns table (
    verdict text, id uuid, org_id uuid, clerk_user_id text, scenario_id uuid, assignment_id uuid,
    status attempt_status, version integer, answers jsonb, auto_save_data jsonb,
    started_at timestamptz, ended_at timestamptz, duration_seconds integer,
    submitted_at timestamptz, last_activity_at timestamptz, recording_path text,
    vapi_call_id text, updated_at timestamptz)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_verdict text := 'ok';
    v_id uuid;
begin
    if not exists (select 1 from scenarios s
                    where s.id = p_scenario_id and s.is_active
                      and (s.org_id = p_org_id or s.org_id is null)) then
        v_verdict := 'scenario_not_found';
    elsif p_assignment_id is not null
          and not exists (select 1 from assignments a
                           where a.id = p_assignment_id and a.org_id = p_org_id
                             and a.assignee_user_id = p_user_id
                             and a.scenario_id = p_scenario_id) then
        v_verdict := 'assignment_not_found';
    else
        insert into scenario_attempts as a
            (org_id, clerk_user_id, scenario_id, assignment_id, vapi_call_id, metadata)
        values (p_org_id, p_user_id, p_scenario_id, p_assignment_id, p_vapi_call_id,
                coalesce(p_metadata, '{}'::jsonb))
        on conflict (org_id, vapi_call_id) where vapi_call_id is not null do nothing
        returning a.id into v_id;
        if v_id is null then
            v_verdict := 'call_linked';
        end if;
    end if;
    -- One row either way: the state of the new attempt, or NULLs beside the refusal.
    return query
        select v_verdict, s.*
          from (values (1)) as one (x)
          left join attempt_states(p_org_id, array[v_id]) s on true;
end
$$;
comment on function attempt_start(uuid, text, uuid, uuid, text, jsonb) is
    'Starts an attempt of the caller: ok with its id, or scenario_not_found, assignment_not_found, call_linked.';

-- ---------------------------------------------------------------------------
-- The hot statements, rewritten on the verdict
-- ---------------------------------------------------------------------------
-- Each reaches scenario_attempts by its primary key whatever the statistics
-- (tests/integration/test_hot_plans.py explains every plan at a small and a
-- large table): an attempt is found by `id = <one key>` in a lateral lookup per
-- item, taken in id order (FOR UPDATE for the writes, so two batches cannot
-- deadlock) and judged on its latest committed version; each UPDATE joins the
-- materialized `judged` rows filtered by an equality on their verdict, which
-- the planner estimates at one row and so drives into the key; and
-- enable_seqscan = off keeps a tiny table from being read whole by a plan that
-- the connection then keeps as the table grows.

drop function attempt_save_drafts(uuid, text, jsonb);
drop function attempt_log_activity(uuid, text, jsonb);
drop function attempt_submit(uuid, text, jsonb);
drop function attempt_write_verdict(boolean, text, attempt_status, integer, text, integer);

create or replace function attempt_states(p_org_id uuid, p_ids uuid[])
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
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
begin
    return query
        select a.id, a.org_id, a.clerk_user_id, a.scenario_id, a.assignment_id, a.status,
               a.version, a.answers, a.auto_save_data, a.started_at, a.ended_at,
               a.duration_seconds, a.submitted_at, a.last_activity_at, a.recording_path,
               a.vapi_call_id, a.updated_at
          from unnest(p_ids) as k(id)
         cross join lateral (
              select s.* from scenario_attempts s
               where s.id = k.id and s.org_id = p_org_id
               limit 1) a;
end
$$;

-- p_items: [{ord, attempt_id, expected_version, answers?, auto_save_data?}].
create function attempt_save_drafts(p_org_id uuid, p_user_id text, p_items jsonb)
returns table (
    ord integer, id uuid, verdict text, status attempt_status, version integer,
    updated_at timestamptz)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_role text := practice_role();
begin
    return query
    with judged as materialized (
        select i.ord, i.attempt_id, i.answers, i.auto_save_data, l.status, l.version,
               attempt_verdict('save', l.id is not null, l.clerk_user_id, l.status,
                               p_user_id, v_role, l.version, i.expected_version) as verdict
          from (select * from jsonb_to_recordset(p_items)
                    as i(ord int, attempt_id uuid, expected_version int, answers jsonb,
                         auto_save_data jsonb)
                 order by i.attempt_id) i
          left join lateral (
              select a.id, a.clerk_user_id, a.status, a.version
                from scenario_attempts a
               where a.id = i.attempt_id and a.org_id = p_org_id
                 for update) l on true
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
    'Autosave of any number of attempts: per item ok (new version) or not_found, forbidden, not_in_progress, conflict (current version).';

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
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_role text := practice_role();
begin
    return query
    with judged as materialized (
        select i.ord, i.attempt_id, i.events, l.org_id, l.clerk_user_id as owner, l.status,
               l.version,
               attempt_verdict('activity', l.id is not null, l.clerk_user_id, l.status,
                               p_user_id, v_role,
                               p_timely => not exists (
                                   select 1 from jsonb_to_recordset(i.events)
                                                 as e(occurred_at timestamptz)
                                    where e.occurred_at < l.started_at - interval '5 minutes'
                                       or e.occurred_at > now() + interval '5 minutes')) as verdict,
               (select max(coalesce(e.occurred_at, now()))
                  from jsonb_to_recordset(i.events) as e(occurred_at timestamptz)) as latest_at
          from (select * from jsonb_to_recordset(p_items)
                    as i(ord int, attempt_id uuid, events jsonb)
                 order by i.attempt_id) i
          left join lateral (
              select a.id, a.org_id, a.clerk_user_id, a.status, a.version, a.started_at
                from scenario_attempts a
               where a.id = i.attempt_id and a.org_id = p_org_id
                 for update) l on true
    ),
    logged as (
        insert into attempt_activity
            (org_id, attempt_id, owner_user_id, user_id, event_type, payload, occurred_at)
        select j.org_id, j.attempt_id, j.owner, p_user_id, e.event_type,
               coalesce(e.payload, '{}'::jsonb), coalesce(e.occurred_at, now())
          from judged j
         cross join jsonb_to_recordset(j.events)
               as e(event_type text, payload jsonb, occurred_at timestamptz)
         where j.verdict = 'ok'
        returning attempt_id
    ),
    touched as (
        update scenario_attempts a
           set last_activity_at = greatest(a.last_activity_at, least(j.latest_at, now()))
          from judged j
         where j.verdict = 'ok' and j.latest_at is not null
           and a.id = j.attempt_id and a.org_id = p_org_id
        returning a.id
    )
    select j.ord, j.attempt_id, j.verdict, j.status, j.version,
           (select count(*) from logged n where n.attempt_id = j.attempt_id)
      from judged j
     order by j.ord;
end
$$;
comment on function attempt_log_activity(uuid, text, jsonb) is
    'Activity log of any number of attempts: per item ok (events inserted) or not_found, forbidden, not_in_progress, out_of_range.';

-- p_items: [{ord, attempt_id, status?, answers?, transcript_text?, score?,
-- score_breakdown?, kpis?, feedback_text?, feedback_json?, manager_comments?}],
-- each carrying only what the caller sent. Per item, the verdict decides:
-- ended (ends it: the completion trigger writes the fact row and moves the
-- counters once), scored (applies the scoring fields to a completed attempt),
-- ended_before (a repeat: the stored result), or a refusal. `changed` names
-- the ending fields a submit to an ended attempt would change.
create function attempt_submit(p_org_id uuid, p_user_id text, p_items jsonb)
returns table (
    ord integer, attempt_id uuid, verdict text, changed text[],
    id uuid, clerk_user_id text, scenario_id uuid, status attempt_status, version integer,
    started_at timestamptz, ended_at timestamptz, duration_seconds integer,
    submitted_at timestamptz, ended_by text, score numeric, score_breakdown jsonb, kpis jsonb,
    feedback_text text, feedback_json jsonb, manager_comments text, scored_by text,
    recording_path text, updated_at timestamptz)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_role text := practice_role();
begin
    return query
    with looked as (
        select i.*, l.a as stored,
               case when (l.a).id is null or (l.a).status = 'in_progress' then '{}'::text[]
                    else array_remove(array[
                        case when i.status is not null and i.status <> (l.a).status
                             then 'status' end,
                        case when i.answers is not null and i.answers <> (l.a).answers
                             then 'answers' end,
                        case when i.transcript_text is not null
                                  and i.transcript_text is distinct from (l.a).transcript_text
                             then 'transcript_text' end], null) end as changed
          from (select * from jsonb_to_recordset(p_items)
                    as i(ord int, attempt_id uuid, status attempt_status, answers jsonb,
                         transcript_text text, score numeric, score_breakdown jsonb, kpis jsonb,
                         feedback_text text, feedback_json jsonb, manager_comments text)
                 order by i.attempt_id) i
          left join lateral (
              select a from scenario_attempts a
               where a.id = i.attempt_id and a.org_id = p_org_id
                 for update) l on true
    ),
    judged as materialized (
        select k.*,
               attempt_verdict('submit', (k.stored).id is not null, (k.stored).clerk_user_id,
                               (k.stored).status, p_user_id, v_role,
                               p_requested_status => k.status,
                               p_sends_work => k.answers is not null or k.transcript_text is not null,
                               p_sends_scoring => k.score is not null or k.score_breakdown is not null
                                   or k.kpis is not null or k.feedback_text is not null
                                   or k.feedback_json is not null or k.manager_comments is not null,
                               p_changed => cardinality(k.changed) > 0) as verdict
          from looked k
    ),
    ended as (
        update scenario_attempts a
           set status = coalesce(j.status, 'completed'),
               ended_at = coalesce(a.ended_at, now()),
               submitted_at = now(),
               ended_by = p_user_id,
               -- From the end the attempt records (a call may have ended it earlier).
               duration_seconds = greatest(0, round(extract(epoch from coalesce(a.ended_at, now())
                                                             - a.started_at)))::int,
               answers = coalesce(j.answers, a.answers),
               transcript_text = coalesce(j.transcript_text, a.transcript_text),
               version = a.version + 1,
               updated_at = now()
          from judged j
         where j.verdict = 'ended' and a.id = j.attempt_id and a.org_id = p_org_id
        returning a.*
    ),
    scored as (
        update scenario_attempts a
           set score = coalesce(j.score, a.score),
               score_breakdown = coalesce(j.score_breakdown, a.score_breakdown),
               kpis = coalesce(j.kpis, a.kpis),
               feedback_text = coalesce(j.feedback_text, a.feedback_text),
               feedback_json = coalesce(j.feedback_json, a.feedback_json),
               manager_comments = coalesce(j.manager_comments, a.manager_comments),
               scored_by = case when j.score is not null then p_user_id else a.scored_by end,
               version = a.version + 1,
               updated_at = now()
          from judged j
         where j.verdict = 'scored' and a.id = j.attempt_id and a.org_id = p_org_id
        returning a.*
    ),
    written as (
        select * from ended union all select * from scored
    )
    select j.ord, j.attempt_id, j.verdict, j.changed,
           coalesce(w.id, (j.stored).id),
           coalesce(w.clerk_user_id, (j.stored).clerk_user_id),
           coalesce(w.scenario_id, (j.stored).scenario_id),
           coalesce(w.status, (j.stored).status),
           coalesce(w.version, (j.stored).version),
           coalesce(w.started_at, (j.stored).started_at),
           case when w.id is not null then w.ended_at else (j.stored).ended_at end,
           case when w.id is not null then w.duration_seconds else (j.stored).duration_seconds end,
           case when w.id is not null then w.submitted_at else (j.stored).submitted_at end,
           case when w.id is not null then w.ended_by else (j.stored).ended_by end,
           case when w.id is not null then w.score else (j.stored).score end,
           case when w.id is not null then w.score_breakdown else (j.stored).score_breakdown end,
           case when w.id is not null then w.kpis else (j.stored).kpis end,
           case when w.id is not null then w.feedback_text else (j.stored).feedback_text end,
           case when w.id is not null then w.feedback_json else (j.stored).feedback_json end,
           case when w.id is not null then w.manager_comments else (j.stored).manager_comments end,
           case when w.id is not null then w.scored_by else (j.stored).scored_by end,
           case when w.id is not null then w.recording_path else (j.stored).recording_path end,
           coalesce(w.updated_at, (j.stored).updated_at)
      from judged j
      left join written w on w.id = j.attempt_id
     order by j.ord;
end
$$;
comment on function attempt_submit(uuid, text, jsonb) is
    'Submit of any number of attempts: per item ended, scored, ended_before (a repeat) or a refusal (not_found, forbidden, changed, not_completed), with the result.';

-- The completion pipeline a completing submit fires (0017): its reads of the
-- attempts become keyed lookups too, with a SET of its own, since its plans
-- are kept per connection under whatever settings its first caller had.
create or replace function practice_complete_attempts(p_ids uuid[])
returns integer
language plpgsql
security invoker
set search_path = public, pg_temp
set enable_seqscan = off
as $$
declare
    v_done integer;
begin
    with fresh as (
        insert into fact_scenario_attempts
            (attempt_id, org_id, user_id, scenario_id, score, duration_seconds,
             talk_ms, listen_ms, started_at, ended_at)
        select a.id, a.org_id, a.clerk_user_id, a.scenario_id, a.score, a.duration_seconds,
               practice_jsonb_int(a.kpis, 'talk_ms'), practice_jsonb_int(a.kpis, 'listen_ms'),
               a.started_at, a.ended_at
          from unnest(p_ids) as u(id)
         cross join lateral (
             select s.* from scenario_attempts s where s.id = u.id limit 1) a
         where a.status = 'completed'
        on conflict (attempt_id) do nothing
        returning attempt_id
    ), done as (
        select a.* from fresh f
         cross join lateral (
             select s.* from scenario_attempts s where s.id = f.attempt_id limit 1) a
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
    select count(*)::integer into v_done from done;
    return v_done;
end
$$;

-- ---------------------------------------------------------------------------
-- Recordings
-- ---------------------------------------------------------------------------
-- The upload check, now the upload verdict: valid, or why not
-- (not_found, forbidden, invalid_status, recording_already_uploaded).
drop function validate_attempt_upload(uuid);
create function validate_attempt_upload(p_attempt_id uuid)
returns table (
    valid         boolean,
    reason        text,
    attempt_id    uuid,
    status        attempt_status,
    recording_path text)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_verdict text;
    r record;
begin
    select a.id, a.clerk_user_id, a.status, a.recording_path into r
      from scenario_attempts a
     where a.id = p_attempt_id and a.org_id = practice_org();
    v_verdict := attempt_verdict('upload', r.id is not null, r.clerk_user_id, r.status,
                                 practice_user(), practice_role(),
                                 p_has_recording => r.recording_path is not null);
    return query select v_verdict = 'ok', nullif(v_verdict, 'ok'), p_attempt_id, r.status,
                        r.recording_path;
end
$$;
comment on function validate_attempt_upload(uuid) is
    'Whether a recording may be attached to the attempt (the upload verdict), with the recording it already has.';

-- The confirm step: judged on the locked row and written in one transaction,
-- so an abandon or another confirm cannot slip between the check and the
-- write. Confirming the recording the attempt already has is a repeat:
-- answered as stored (replayed), nothing written, the version unchanged.
create function attempt_record_recording(p_org_id uuid, p_user_id text, p_attempt_id uuid, p_key text)
returns table (
    verdict text, replayed boolean, id uuid, version integer, recording_path text,
    updated_at timestamptz)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_verdict text;
    r record;
begin
    select a.id, a.clerk_user_id, a.status, a.version, a.recording_path, a.updated_at into r
      from scenario_attempts a
     where a.id = p_attempt_id and a.org_id = p_org_id
       for update;
    v_verdict := attempt_verdict('upload', r.id is not null, r.clerk_user_id, r.status,
                                 p_user_id, practice_role(),
                                 p_has_recording => r.recording_path is not null);
    if v_verdict = 'recording_already_uploaded' and r.recording_path = p_key then
        return query select 'ok'::text, true, r.id, r.version, r.recording_path, r.updated_at;
        return;
    end if;
    if v_verdict <> 'ok' then
        return query select v_verdict, false, r.id, r.version, r.recording_path, r.updated_at;
        return;
    end if;
    return query
        update scenario_attempts a
           set recording_path = p_key, version = a.version + 1, updated_at = now()
         where a.id = p_attempt_id and a.org_id = p_org_id
        returning 'ok'::text, false, a.id, a.version, a.recording_path, a.updated_at;
end
$$;
comment on function attempt_record_recording(uuid, text, uuid, text) is
    'Records the uploaded recording of an attempt under the upload verdict (ok, replayed, or why not), in the transaction that writes it.';

-- ---------------------------------------------------------------------------
-- validate: what a bare submit would do now
-- ---------------------------------------------------------------------------
-- verdict: ended (a submit would end it: valid), ended_before (it has ended),
-- forbidden (a coach must say abandoned), not_found. warnings do not stop a
-- submit; they tell a client what it may want to settle first:
--   no_answers             nothing has been saved in answers;
--   recording_in_progress  a recording_started event has no later recording_stopped;
--   recording_unconfirmed  recording_stopped was logged but no recording confirmed.
drop function validate_multiple_attempts(uuid[]);
create function validate_multiple_attempts(p_attempt_ids uuid[])
returns table (
    ord           integer,
    attempt_id    uuid,
    verdict       text,
    status        attempt_status,
    version       integer,
    warnings      text[])
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
    v_org uuid := practice_org();
    v_user text := practice_user();
    v_role text := practice_role();
begin
    return query
    with item as (
        select t.attempt_id, t.ord::integer as ord
          from unnest(p_attempt_ids) with ordinality as t(attempt_id, ord)
    ),
    found as (
        select a.*
          from (select distinct i.attempt_id from item i) k
          cross join lateral (
              select s.id, s.clerk_user_id, s.status, s.version, s.answers, s.recording_path
                from scenario_attempts s
               where s.id = k.attempt_id and s.org_id = v_org
               limit 1
          ) a
    ),
    recording as (
        select f.id as attempt_id,
               (select max(e.occurred_at) from attempt_activity e
                 where e.attempt_id = f.id and e.event_type = 'recording_started') as started,
               (select max(e.occurred_at) from attempt_activity e
                 where e.attempt_id = f.id and e.event_type = 'recording_stopped') as stopped
          from found f
    )
    select i.ord, i.attempt_id,
           attempt_verdict('submit', a.id is not null, a.clerk_user_id, a.status, v_user, v_role),
           a.status, a.version,
           case when a.id is null then '{}'::text[]
                else array_remove(array[
                    case when a.answers = '{}'::jsonb or jsonb_typeof(a.answers) = 'null'
                         then 'no_answers' end,
                    case when r.started is not null and (r.stopped is null or r.stopped < r.started)
                         then 'recording_in_progress' end,
                    case when r.stopped is not null and r.stopped >= coalesce(r.started, r.stopped)
                              and a.recording_path is null
                         then 'recording_unconfirmed' end
                ], null) end
      from item i
      left join found a on a.id = i.attempt_id
      left join recording r on r.attempt_id = a.id
     order by i.ord;
end
$$;
comment on function validate_multiple_attempts(uuid[]) is
    'For each id (in order) what a bare submit would do now (the submit verdict), with warnings: no_answers, recording_in_progress, recording_unconfirmed.';

-- ---------------------------------------------------------------------------
-- The role order, once: resolve_principal answers the lesser of the token's
-- role and the stored one (the enum is declared admin, manager, trainee, so
-- the greater value is the lesser privilege).
-- ---------------------------------------------------------------------------
create or replace function resolve_principal(p_clerk_org_id text, p_user_id text, p_role text)
returns table (org_id uuid, member_role member_role)
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    v_org uuid;
begin
    if p_role is null or p_role not in ('admin', 'manager', 'trainee') then
        return;
    end if;
    select o.id into v_org
      from orgs o
     where o.clerk_org_id = p_clerk_org_id and o.deleted_at is null;
    if v_org is null then
        return;
    end if;
    insert into org_members (org_id, user_id, role)
    values (v_org, p_user_id, p_role::member_role)
    on conflict on constraint org_members_pkey do nothing;
    return query
        select m.org_id, greatest(m.role, p_role::member_role)
          from org_members m
         where m.org_id = v_org and m.user_id = p_user_id and m.deleted_at is null;
end
$$;
comment on function resolve_principal(text, text, text) is
    'Maps a Clerk org and user to the internal org and the effective role (the lesser of the token''s and the stored one); provisions the membership from a verified token.';

-- ---------------------------------------------------------------------------
-- Grants
-- ---------------------------------------------------------------------------
revoke all on function attempt_verdict(text, boolean, text, attempt_status, text, text, integer, integer, boolean, attempt_status, boolean, boolean, boolean, boolean) from public;
revoke all on function attempt_start(uuid, text, uuid, uuid, text, jsonb) from public;
revoke all on function attempt_save_drafts(uuid, text, jsonb) from public;
revoke all on function attempt_log_activity(uuid, text, jsonb) from public;
revoke all on function attempt_submit(uuid, text, jsonb) from public;
revoke all on function validate_attempt_upload(uuid) from public;
revoke all on function attempt_record_recording(uuid, text, uuid, text) from public;
revoke all on function validate_multiple_attempts(uuid[]) from public;
grant execute on function attempt_verdict(text, boolean, text, attempt_status, text, text, integer, integer, boolean, attempt_status, boolean, boolean, boolean, boolean) to practice_app;
grant execute on function attempt_start(uuid, text, uuid, uuid, text, jsonb) to practice_app;
grant execute on function attempt_save_drafts(uuid, text, jsonb) to practice_app;
grant execute on function attempt_log_activity(uuid, text, jsonb) to practice_app;
grant execute on function attempt_submit(uuid, text, jsonb) to practice_app;
grant execute on function validate_attempt_upload(uuid) to practice_app;
grant execute on function attempt_record_recording(uuid, text, uuid, text) to practice_app;
grant execute on function validate_multiple_attempts(uuid[]) to practice_app;
