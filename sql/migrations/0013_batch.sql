-- 0013_batch.sql
--
-- What: validate_multiple_attempts(uuid[]), the check of whether each
-- attempt can be submitted, and why not.
--
-- Why: the batch function's `validate` operation. The other batch operations
-- (batch_save, multiple_states, batch_activity, batch_submit) run the attempt
-- endpoint's own statements over many items (practice.attempts.service:
-- SAVE_DRAFTS, STATES, LOG_ACTIVITY, SUBMIT), so their rules keep one home and
-- no SQL copy of them exists here.
--
-- The checks, in this order (an attempt may fail several):
--   not_in_progress        the attempt has ended (completed, abandoned, failed);
--   no_answers             nothing has been saved in answers;
--   recording_in_progress  a recording_started event has no later recording_stopped;
--   recording_unconfirmed  recording_stopped was logged but no uploaded
--                          recording has been confirmed (recording_path is null).
-- An id the caller cannot see (unknown, another org's, a trainee's the caller
-- may not see) comes back with found = false and no checks.
--
-- Security: SECURITY INVOKER (RLS decides what the caller sees), and the
-- caller's org again in the query (tenancy twice).

create function validate_multiple_attempts(p_attempt_ids uuid[])
returns table (
    ord           integer,
    attempt_id    uuid,
    found         boolean,
    status        attempt_status,
    version       integer,
    problems      text[])
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    with item as (
        select t.attempt_id, t.ord::integer as ord
          from unnest(p_attempt_ids) with ordinality as t(attempt_id, ord)
    ),
    recording as (
        select e.attempt_id,
               max(e.occurred_at) filter (where e.event_type = 'recording_started') as started,
               max(e.occurred_at) filter (where e.event_type = 'recording_stopped') as stopped
          from attempt_activity e
         where e.attempt_id in (select attempt_id from item)
           and e.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
           and e.event_type in ('recording_started', 'recording_stopped')
         group by e.attempt_id
    )
    select i.ord, i.attempt_id, a.id is not null, a.status, a.version,
           case when a.id is null then '{}'::text[]
                else array_remove(array[
                    case when a.status <> 'in_progress' then 'not_in_progress' end,
                    case when a.answers = '{}'::jsonb or jsonb_typeof(a.answers) = 'null'
                         then 'no_answers' end,
                    case when r.started is not null and (r.stopped is null or r.stopped < r.started)
                         then 'recording_in_progress' end,
                    case when r.stopped is not null and r.stopped >= coalesce(r.started, r.stopped)
                              and a.recording_path is null
                         then 'recording_unconfirmed' end
                ], null) end
      from item i
      left join scenario_attempts a
             on a.id = i.attempt_id
            and a.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
      left join recording r on r.attempt_id = a.id
     order by i.ord
$$;
comment on function validate_multiple_attempts(uuid[]) is
    'Seed 004: for each id (in order) whether the caller can see it and why it cannot be submitted yet: not_in_progress, no_answers, recording_in_progress, recording_unconfirmed.';
revoke all on function validate_multiple_attempts(uuid[]) from public;
grant execute on function validate_multiple_attempts(uuid[]) to practice_app;
