-- 0017: completing an attempt plans nothing again on PostgreSQL before 18.
--
-- A submit that completes an attempt fires trigger_populate_fact(), which runs
-- practice_complete_attempts() (0005), and that calls practice_jsonb_int() (0001)
-- per fact row. Both were SQL-language functions with a SET clause, so neither
-- is inlined, and servers before 18 plan the body of such a function on every
-- call: 3 plannings of every completing submit besides its own two (counted on
-- PostgreSQL 15 by tests/integration/test_plan_cache.py). PL/pgSQL keeps the
-- plans of its statements and expressions for the life of the backend, as the
-- functions of 0014 do. What each function does is unchanged.

create or replace function practice_jsonb_int(p_doc jsonb, p_key text)
returns integer
language plpgsql
immutable
parallel safe
security invoker
set search_path = public, pg_temp
as $$
declare
    v text;
begin
    if coalesce(jsonb_typeof(p_doc -> p_key), '') not in ('number', 'string') then
        return null;
    end if;
    v := p_doc ->> p_key;
    -- Separate tests, in this order: the cast runs only on text shaped as a number.
    if v !~ '^\s*-?[0-9]{1,12}(\.[0-9]+)?\s*$' then
        return null;
    end if;
    if round(v::numeric) not between -2147483648 and 2147483647 then
        return null;
    end if;
    return round(v::numeric)::integer;
end
$$;

create or replace function practice_complete_attempts(p_ids uuid[])
returns integer
language plpgsql
security invoker
set search_path = public, pg_temp
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
    select count(*)::integer into v_done from done;
    return v_done;
end
$$;
