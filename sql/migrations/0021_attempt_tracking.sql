-- 0021: attempt tracking and comparison, a learner's history over HTTP
-- (GET /users/{userId}/...), as the five functions its callers name:
-- get_user_scenario_attempts, get_user_best_attempts,
-- get_user_score_improvement, get_recent_attempts_comparison and
-- get_attempt_comparison_summary.
--
-- Who may ask about whom has one home, practice_sees_member(): the 'member'
-- shape of practice_rule() (0020) over org_members, so a trainee asks about
-- themselves, a manager about their team and themselves, an admin about anyone
-- of the org. Each function asks it first and raises SQLSTATE PNSEE (the
-- member is unknown or not the caller's to see: one answer, a 404) before it
-- reads anything. Each is SECURITY INVOKER (row-level security applies) and
-- filters by p_org_id as well.
--
-- Definitions, over the member's completed attempts (status 'completed'):
--   first   earliest started_at (ties: the lower id);
--   latest  most recent started_at (ties: the higher id);
--   best    highest score, ties -> most recent (score desc, started_at desc, id desc);
--   attempt_number   1-based chronological position on that scenario.
-- Trend: this attempt's 3-attempt moving average against the previous
-- attempt's on the same scenario: more than +2 points 'improving', less than
-- -2 'declining', otherwise (and for the first attempt) 'stable'.
-- improvement_percentage = (latest - first) / first * 100, NULL when the first
-- score is 0 or missing or the latest attempt has no score.
--
-- Plans: PL/pgSQL caches each statement's plan per server connection; the
-- generic plan is forced (as 0015 does for the attempt statements) so a pooled
-- connection plans each once: every statement reaches scenario_attempts through
-- one of the three partial tracking indexes (0004) whatever the values.

-- ---------------------------------------------------------------------------
-- The visibility rule of a member
-- ---------------------------------------------------------------------------
do $rule$
begin
    execute format($f$
        create function practice_sees_member(p_member text)
        returns boolean
        language sql
        stable
        security invoker
        set search_path = public, pg_temp
        as $body$
            select exists (
                select 1 from public.org_members
                 where user_id = p_member and deleted_at is null and (%s))
        $body$$f$, practice_rule('member', 'user_id'));
end
$rule$;
comment on function practice_sees_member(text) is
    'Whether the caller may ask about member p_member of their org: an admin anyone, a manager their team and themselves, anyone themselves (the member shape of practice_rule).';
revoke all on function practice_sees_member(text) from public;
grant execute on function practice_sees_member(text) to practice_app;

-- Raises PNSEE unless the caller may ask about p_member of org p_org_id.
create function practice_require_member(p_org_id uuid, p_member text)
returns void
language plpgsql
stable
security invoker
set search_path = public, pg_temp
as $$
begin
    if p_org_id is distinct from practice_org() or not practice_sees_member(p_member) then
        raise exception 'member % not found', p_member using errcode = 'PNSEE';
    end if;
end
$$;
comment on function practice_require_member(uuid, text) is
    'Raises SQLSTATE PNSEE (not found) unless the caller may ask about member p_member of org p_org_id.';
revoke all on function practice_require_member(uuid, text) from public;
grant execute on function practice_require_member(uuid, text) to practice_app;

-- ---------------------------------------------------------------------------
-- History: completed attempts newest first, keyset pages on (started_at, id)
-- ---------------------------------------------------------------------------
create function get_user_scenario_attempts(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid default null,
    p_limit integer default 50,
    p_before_started_at timestamptz default null, p_before_id uuid default null)
returns table (
    attempt_id       uuid,
    scenario_id      uuid,
    started_at       timestamptz,
    ended_at         timestamptz,
    duration_seconds integer,
    score            numeric,
    score_breakdown  jsonb,
    kpis             jsonb,
    feedback_text    text)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_limit constant integer := least(greatest(coalesce(p_limit, 50), 1), 200);
begin
    perform practice_require_member(p_org_id, p_clerk_user_id);
    if p_scenario_id is null then
        -- idx_scenario_attempts_user_recent
        return query
            select a.id, a.scenario_id, a.started_at, a.ended_at, a.duration_seconds, a.score,
                   a.score_breakdown, a.kpis, a.feedback_text
              from scenario_attempts a
             where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
               and a.status = 'completed'
               and (p_before_started_at is null
                    or (a.started_at <= p_before_started_at
                        and (a.started_at < p_before_started_at or a.id < p_before_id)))
             order by a.started_at desc, a.id desc
             limit v_limit;
    else
        -- idx_scenario_attempts_user_scenario_time
        return query
            select a.id, a.scenario_id, a.started_at, a.ended_at, a.duration_seconds, a.score,
                   a.score_breakdown, a.kpis, a.feedback_text
              from scenario_attempts a
             where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
               and a.scenario_id = p_scenario_id and a.status = 'completed'
               and (p_before_started_at is null
                    or (a.started_at <= p_before_started_at
                        and (a.started_at < p_before_started_at or a.id < p_before_id)))
             order by a.started_at desc, a.id desc
             limit v_limit;
    end if;
end
$$;
comment on function get_user_scenario_attempts(uuid, text, uuid, integer, timestamptz, uuid) is
    'Completed attempts of a member (of one scenario, or all), newest first, after the keyset (p_before_started_at, p_before_id); p_limit clamped to 1..200. PNSEE when the member is not the caller''s to see.';

-- ---------------------------------------------------------------------------
-- Best completed attempt per scenario
-- ---------------------------------------------------------------------------
create function get_user_best_attempts(p_org_id uuid, p_clerk_user_id text)
returns table (
    scenario_id       uuid,
    best_attempt_id   uuid,
    best_score        numeric,
    best_attempt_date timestamptz,
    scenario_title    text)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
    perform practice_require_member(p_org_id, p_clerk_user_id);
    -- idx_scenario_attempts_user_scenario_score
    return query
        select b.scenario_id, b.id, b.score, b.started_at, s.title
          from (select distinct on (a.scenario_id) a.scenario_id, a.id, a.score, a.started_at
                  from scenario_attempts a
                 where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
                   and a.status = 'completed' and a.score is not null
                 order by a.scenario_id, a.score desc, a.started_at desc, a.id desc) b
          left join scenarios s on s.id = b.scenario_id
         order by b.started_at desc, b.id desc;
end
$$;
comment on function get_user_best_attempts(uuid, text) is
    'Best completed attempt per scenario of a member (highest score, ties -> most recent), most recent first.';

-- ---------------------------------------------------------------------------
-- Score improvement over time on one scenario (or all)
-- ---------------------------------------------------------------------------
-- History before the p_days_back window still counts for numbering, deltas,
-- averages and ranks; only the rows returned are limited to the window.
create function get_user_score_improvement(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid default null,
    p_days_back integer default 90)
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
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
    perform practice_require_member(p_org_id, p_clerk_user_id);
    -- idx_scenario_attempts_user_scenario_score (scored completed attempts)
    return query
        with hist as (
            select a.id, a.scenario_id, a.started_at, a.score,
                   row_number() over w as attempt_number,
                   a.score - lag(a.score) over w as score_delta,
                   avg(a.score) over (w rows between 2 preceding and current row) as moving_avg_3,
                   percent_rank() over (partition by a.scenario_id order by a.score) as pct
              from scenario_attempts a
             where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
               and a.status = 'completed' and a.score is not null
               and (p_scenario_id is null or a.scenario_id = p_scenario_id)
            window w as (partition by a.scenario_id order by a.started_at, a.id)
        ), trend as (
            select h.*, h.moving_avg_3 - lag(h.moving_avg_3) over (
                       partition by h.scenario_id order by h.started_at, h.id) as ma_change
              from hist h
        )
        select t.id, t.scenario_id, t.started_at, t.score, t.attempt_number::integer,
               round(t.score_delta, 2), round(t.moving_avg_3, 2),
               round((t.pct * 100)::numeric, 2),
               case when t.ma_change > 2 then 'improving'
                    when t.ma_change < -2 then 'declining'
                    else 'stable' end
          from trend t
         where t.started_at >= now() - make_interval(days => least(greatest(coalesce(p_days_back, 90), 1), 3650))
         order by t.scenario_id, t.started_at, t.id;
end
$$;
comment on function get_user_score_improvement(uuid, text, uuid, integer) is
    'Per scored attempt of a member: attempt number, score delta, 3-attempt moving average, percentile rank (0..100) and trend (moving average +-2 points against the previous attempt''s) over the last p_days_back days.';

-- ---------------------------------------------------------------------------
-- The N most recent completed attempts, flagged against all the others
-- ---------------------------------------------------------------------------
-- is_best_score / is_latest / rank_by_score are per scenario over all the
-- member's completed attempts on it, not only the ones returned.
create function get_recent_attempts_comparison(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid default null,
    p_limit integer default 5)
returns table (
    attempt_id    uuid,
    scenario_id   uuid,
    started_at    timestamptz,
    score         numeric,
    is_best_score boolean,
    is_latest     boolean,
    rank_by_score integer)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_limit constant integer := least(greatest(coalesce(p_limit, 5), 1), 100);
begin
    perform practice_require_member(p_org_id, p_clerk_user_id);
    -- The page first (idx_scenario_attempts_user_recent or _user_scenario_time),
    -- then each returned attempt's standing within its scenario
    -- (idx_scenario_attempts_user_scenario_score).
    return query
        with recent as (
            select a.id, a.scenario_id, a.started_at, a.score
              from scenario_attempts a
             where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
               and a.status = 'completed'
               and (p_scenario_id is null or a.scenario_id = p_scenario_id)
             order by a.started_at desc, a.id desc
             limit v_limit
        )
        select r.id, r.scenario_id, r.started_at, r.score,
               coalesce(best.id = r.id, false),
               latest.id = r.id,
               (case when r.score is null then
                    (select count(*) from scenario_attempts o
                      where o.org_id = p_org_id and o.clerk_user_id = p_clerk_user_id
                        and o.scenario_id = r.scenario_id and o.status = 'completed'
                        and o.score is not null) + 1
                else
                    (select count(*) from scenario_attempts o
                      where o.org_id = p_org_id and o.clerk_user_id = p_clerk_user_id
                        and o.scenario_id = r.scenario_id and o.status = 'completed'
                        and o.score is not null and o.score > r.score) + 1
                end)::integer
          from recent r
          left join lateral (
              select o.id from scenario_attempts o
               where o.org_id = p_org_id and o.clerk_user_id = p_clerk_user_id
                 and o.scenario_id = r.scenario_id and o.status = 'completed'
                 and o.score is not null
               order by o.score desc, o.started_at desc, o.id desc
               limit 1) best on true
          cross join lateral (
              select o.id from scenario_attempts o
               where o.org_id = p_org_id and o.clerk_user_id = p_clerk_user_id
                 and o.scenario_id = r.scenario_id and o.status = 'completed'
               order by o.started_at desc, o.id desc
               limit 1) latest
         order by r.started_at desc, r.id desc;
end
$$;
comment on function get_recent_attempts_comparison(uuid, text, uuid, integer) is
    'The member''s N most recent completed attempts with is_best_score, is_latest and rank_by_score (rank() by score desc; unscored rank last) within their scenario; p_limit clamped to 1..100.';

-- ---------------------------------------------------------------------------
-- One scenario's first, best and latest attempts with statistics
-- ---------------------------------------------------------------------------
-- One row when the scenario is visible to the caller, none otherwise.
-- total_attempts counts every attempt started (the trigger-kept
-- user_scenario_progress.times_attempted); the rest is over completed attempts:
-- statistics over the scored ones, total_practice_seconds the sum of their
-- duration_seconds.
create function get_attempt_comparison_summary(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid)
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
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
    perform practice_require_member(p_org_id, p_clerk_user_id);
    return query
        with comp as (
            select a.id, a.score, a.started_at, a.duration_seconds
              from scenario_attempts a
             where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
               and a.scenario_id = p_scenario_id and a.status = 'completed'
        ), first_a as (
            select c.id, c.score, c.started_at from comp c order by c.started_at, c.id limit 1
        ), best_a as (
            select c.id, c.score, c.started_at from comp c where c.score is not null
             order by c.score desc, c.started_at desc, c.id desc limit 1
        ), latest_a as (
            select c.id, c.score, c.started_at from comp c
             order by c.started_at desc, c.id desc limit 1
        ), stats as (
            select count(*)::integer as completed,
                   avg(c.score) as avg_score,
                   percentile_cont(0.5) within group (order by c.score) as median,
                   stddev_samp(c.score) as sd,
               coalesce(sum(c.duration_seconds), 0)::bigint as secs
              from comp c
        ), totals as (
            -- Attempts started, of any status: the counter the attempt triggers
            -- keep (0004), by primary key, rather than a scan of every status.
            select coalesce(max(p.times_attempted), 0)::integer as total
              from user_scenario_progress p
             where p.org_id = p_org_id and p.user_id = p_clerk_user_id
               and p.scenario_id = p_scenario_id
        )
        select s.id, s.title, t.total, st.completed,
               f.id, f.score, f.started_at,
               b.id, b.score, b.started_at,
               l.id, l.score, l.started_at,
               round(st.avg_score, 2), round(st.median::numeric, 2), round(st.sd, 2),
               st.secs,
               case when f.score is null or f.score = 0 or l.score is null then null
                    else round((l.score - f.score) / f.score * 100, 2) end
          from scenarios s
         cross join totals t
         cross join stats st
          left join first_a f on true
          left join best_a b on true
          left join latest_a l on true
         where s.id = p_scenario_id;
end
$$;
comment on function get_attempt_comparison_summary(uuid, text, uuid) is
    'First/best/latest completed attempt, average/median/stddev of scores, practice seconds and improvement percentage ((latest - first) / first * 100; NULL when the first score is 0 or missing or the latest is unscored) of a member on a scenario.';

revoke all on function get_user_scenario_attempts(uuid, text, uuid, integer, timestamptz, uuid) from public;
revoke all on function get_user_best_attempts(uuid, text) from public;
revoke all on function get_user_score_improvement(uuid, text, uuid, integer) from public;
revoke all on function get_recent_attempts_comparison(uuid, text, uuid, integer) from public;
revoke all on function get_attempt_comparison_summary(uuid, text, uuid) from public;
grant execute on function get_user_scenario_attempts(uuid, text, uuid, integer, timestamptz, uuid) to practice_app;
grant execute on function get_user_best_attempts(uuid, text) to practice_app;
grant execute on function get_user_score_improvement(uuid, text, uuid, integer) to practice_app;
grant execute on function get_recent_attempts_comparison(uuid, text, uuid, integer) to practice_app;
grant execute on function get_attempt_comparison_summary(uuid, text, uuid) to practice_app;
