-- 0033: every dashboard's reads as PL/pgSQL functions (the leaderboard, a
-- member's own report, the team, assignments, scenario insights; the overview
-- since 0032); the overview and the leaderboard rendered as the JSON documents
-- the routes send; a member's last attempts reached newest first by index.
--
-- These dashboards read through text statements that PostgreSQL planned again
-- on every request (the pool sends no prepared statements behind the pooler):
-- with the row-level security policies expanded, planning took 1.2-1.7 ms a
-- statement, more than running them. PL/pgSQL keeps each statement's plan on
-- the connection, as 0032 did for the overview. SECURITY INVOKER (the team
-- ranks stay 0027's definer): row-level security applies as to the statements
-- they replace, and every read is also filtered by the context org. A team's
-- rows are reached member by member.
--
-- The overview (365 days, a 30-day trend) and the leaderboard (two months of
-- an org's members, ranked) were shaped row by row in Python, which cost more
-- than reading them. They are now written here as the documents pydantic
-- wrote (tests/integration/test_dashboard_documents.py holds them equal, byte
-- for byte), and sent as they are.
--
-- A member's last five attempts were found by reading every fact of theirs and
-- sorting them (1,000 facts: 14 ms): idx_fact_attempts_covering ended at
-- started_at, so the attempt id that breaks ties was not in index order. The
-- index now carries it, and the five are read backwards from the newest.

-- A month's rows of an org (the org's leaderboard) come from an index that
-- also ends in the member, so a probe for one member's month reaches its row
-- whichever of this index and the key the planner takes (it ordered the month
-- by average score, which nothing reads: the board is ranked after it is read).
drop index rpt_leaderboard_month_org_month_idx;
create index rpt_leaderboard_month_org_month_idx on rpt_leaderboard_month (org_id, month, user_id);

drop index idx_fact_attempts_covering;
create index idx_fact_attempts_covering on fact_scenario_attempts (org_id, user_id, started_at, attempt_id)
    include (score, duration_seconds);

-- The leaderboard's rows for the given months: the org's members, or one
-- manager's current direct reports. Two statements, so each keeps a plan that
-- reads only its own rows (a catch-all "p_manager is null or ..." would plan
-- for the whole org either way); every row and name is reached by key, the
-- team's rows member by member.
create function reports_leaderboard(p_months timestamptz[], p_manager text)
returns table (
    user_id             text,
    name                text,
    month               timestamptz,
    avg_score           numeric,
    attempts            bigint,
    total_duration      bigint,
    avg_talk_percentage double precision
)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_nestloop = on
set enable_seqscan = off
as $$
declare
    v_org uuid := practice_org();
begin
    if p_manager is null then
        return query
            select l.user_id, (select d.name from dim_users d
                                where d.org_id = l.org_id and d.user_id = l.user_id),
                   l.month, l.avg_score, l.attempts, l.total_duration, l.avg_talk_percentage
              from rpt_leaderboard_month l
             where l.org_id = v_org and l.month = any(p_months);
    else
        return query
            select l.user_id, (select d.name from dim_users d
                                where d.org_id = l.org_id and d.user_id = l.user_id),
                   l.month, l.avg_score, l.attempts, l.total_duration, l.avg_talk_percentage
              from org_members m
             cross join unnest(p_months) as wanted(month)
             -- the whole key: a unique probe per member and month (the limit keeps
             -- the planner from flattening the probe into a join that walks the
             -- org's month and matches members afterwards)
             cross join lateral (
                   select r.* from rpt_leaderboard_month r
                    where r.org_id = m.org_id and r.user_id = m.user_id and r.month = wanted.month
                    limit 1) l
             where m.org_id = v_org and m.manager_user_id = p_manager and m.deleted_at is null;
    end if;
end
$$;
comment on function reports_leaderboard(timestamptz[], text) is
    'SECURITY INVOKER: the leaderboard rows (mv_leaderboard_month with the member''s name) of the context org for p_months: every member''s, or p_manager''s current direct reports''.';
revoke all on function reports_leaderboard(timestamptz[], text) from public;
grant execute on function reports_leaderboard(timestamptz[], text) to practice_app;

-- The caller's own report: attempts started since p_week_start, the average
-- score of every scored attempt, the months since p_since, the last five
-- attempts and the next twenty open assignments.
create function reports_me(p_week_start date, p_since timestamptz)
returns table (
    attempts_this_week bigint,
    avg_score          numeric,
    months             jsonb,
    last_attempts      jsonb,
    upcoming           jsonb
)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
-- Row-level security hides how many rows a member's read matches, so the
-- planner guesses one and would read all their facts to sort five; without a
-- sort to choose, the five come newest first from the index. Every read goes
-- by key whatever the statistics say (a plan made while a table was small
-- would scan it whole when it is not).
set enable_sort = off
set enable_bitmapscan = off
set enable_seqscan = off
as $$
declare
    v_org  uuid := practice_org();
    v_user text := practice_user();
begin
    select coalesce(sum(d.attempts) filter (where d.day >= p_week_start), 0)::bigint,
           sum(d.score_sum) / nullif(sum(d.scored), 0)
      into attempts_this_week, avg_score
      from rpt_user_day d
     where d.org_id = v_org and d.user_id = v_user;
    select coalesce(jsonb_agg(jsonb_build_object(
               'month', to_char(l.month at time zone 'UTC', 'YYYY-MM'),
               'avg_score', l.avg_score, 'attempts', l.attempts) order by l.month), '[]')
      into months
      from rpt_leaderboard_month l
     where l.org_id = v_org and l.user_id = v_user and l.month >= p_since;
    select coalesce(jsonb_agg(to_jsonb(a) order by a.started_at desc, a.attempt_id desc), '[]')
      into last_attempts
      from (select f.attempt_id, f.user_id, f.scenario_id, s.title, f.score,
                   f.duration_seconds, f.started_at, f.ended_at
              from fact_scenario_attempts f
              left join dim_scenarios s on s.scenario_id = f.scenario_id
             where f.org_id = v_org and f.user_id = v_user
             order by f.started_at desc, f.attempt_id desc
             limit 5) a;
    select coalesce(jsonb_agg(to_jsonb(u) order by u.due_at nulls last, u.assignment_id), '[]')
      into upcoming
      from (select a.id as assignment_id, a.scenario_id, s.title, a.due_at, a.required
              from assignments a
              left join dim_scenarios s on s.scenario_id = a.scenario_id
             where a.org_id = v_org and a.assignee_user_id = v_user
               and a.completed_at is null and (a.due_at is null or a.due_at >= now())
             order by a.due_at nulls last, a.id
             limit 20) u;
    return next;
end
$$;
comment on function reports_me(date, timestamptz) is
    'SECURITY INVOKER: the context member''s report: attempts started since p_week_start, their average score, their months since p_since, last 5 attempts and next 20 open assignments.';
revoke all on function reports_me(date, timestamptz) from public;
grant execute on function reports_me(date, timestamptz) to practice_app;

-- A double as Python writes float(p_value): the shortest digits that read
-- back as the same double (extra_float_digits > 0, set by the caller), and a
-- fraction even when whole; for magnitudes between 1e-4 and 1e15, as 0029's
-- practice_json_float.
create function practice_json_double(p_value double precision)
returns text
language sql
immutable
parallel safe
as $$
    select case when p_value = trunc(p_value) then trunc(p_value)::numeric::text || '.0'
                else p_value::text end
$$;
comment on function practice_json_double(double precision) is
    'A double as the API writes it as a JSON float (5 -> 5.0); shortest digits when the session''s extra_float_digits > 0; for magnitudes between 1e-4 and 1e15.';
revoke all on function practice_json_double(double precision) from public;
grant execute on function practice_json_double(double precision) to practice_app;

-- The leaderboard of p_month as the Leaderboard document the route sends,
-- byte for byte what pydantic writes: its rows ranked by average score, best
-- first, ties sharing a rank and listed by user id (C order), each beside the
-- member's p_previous month. The two months are paired by hashing (the board
-- is the caller's rows already): row security hides their sizes, and a nested
-- loop over both would compare every member of one month with every member of
-- the other. Floats print at their shortest exact form whatever the session
-- says (extra_float_digits).
create function reports_leaderboard_document(
    p_month timestamptz, p_previous timestamptz, p_manager text, p_month_text text, p_scope text)
returns text
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_nestloop = off
set extra_float_digits = 1
as $$
declare
    v_rows text;
begin
    with board as (
        select * from reports_leaderboard(array[p_month, p_previous], p_manager)
    ), current_month as (
        select b.*, rank() over (order by b.avg_score desc nulls last) as rank
          from board b where b.month = p_month
    ), previous_month as (
        select b.user_id, b.avg_score, rank() over (order by b.avg_score desc nulls last) as rank
          from board b where b.month = p_previous
    )
    select string_agg(
               '{"rank":' || c.rank
               || ',"user_id":' || to_json(c.user_id)::text
               || ',"name":' || coalesce(to_json(c.name)::text, 'null')
               || ',"avg_score":' || coalesce(practice_json_float(c.avg_score), 'null')
               || ',"attempts":' || c.attempts
               || ',"total_duration":' || coalesce(c.total_duration::text, 'null')
               || ',"avg_talk_percentage":'
               || coalesce(practice_json_double(c.avg_talk_percentage), 'null')
               || ',"previous_avg_score":' || coalesce(practice_json_float(p.avg_score), 'null')
               || ',"change":'
               || coalesce(practice_json_double(c.avg_score::float8 - p.avg_score::float8), 'null')
               || ',"previous_rank":' || coalesce(p.rank::text, 'null') || '}',
               ',' order by c.avg_score desc nulls last, c.user_id collate "C")
      into v_rows
      from current_month c
      left join previous_month p on p.user_id = c.user_id;
    return '{"refreshed_at":'
        || coalesce('"' || practice_json_instant(reports_refreshed_at()) || '"', 'null')
        || ',"month":' || to_json(p_month_text)::text
        || ',"scope":' || to_json(p_scope)::text
        || ',"team":' || coalesce(to_json(p_manager)::text, 'null')  -- the team shown is the one read
        || ',"rows":[' || coalesce(v_rows, '') || ']}';
end
$$;
comment on function reports_leaderboard_document(timestamptz, timestamptz, text, text, text) is
    'SECURITY INVOKER: the leaderboard of the context org (or p_manager''s team) for p_month beside p_previous, as the JSON document of practice.reporting.models.Leaderboard.';
revoke all on function reports_leaderboard_document(timestamptz, timestamptz, text, text, text) from public;
grant execute on function reports_leaderboard_document(timestamptz, timestamptz, text, text, text) to practice_app;

-- The org overview as of p_today (UTC), as the OrgOverview document the route
-- sends, byte for byte what pydantic writes (practice.reporting.models; 0029's
-- helpers write instants and floats as the models do): its totals, active
-- users this month, the last 365 days with attempts (the heatmap; the week and
-- month windows, today and the 6 / 29 days before, are summed from them), the
-- last 30 days one by one (the trend) and the p_top scenarios by attempts.
-- Built by concatenation, as 0029's items: every piece is JSON already (to_json
-- of a title) or needs no escape (uuids, days, numbers). It replaces 0032's
-- row function, whose rows Python shaped into the same document: 395 day
-- objects built, validated and written again cost more than reading them.
drop function reports_org_overview(date, integer);
create function reports_org_overview_document(p_today date, p_top integer)
returns text
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set extra_float_digits = 1
as $$
declare
    v_org    uuid := practice_org();
    v_totals record;
    v_active bigint;
    v_days   text;
    v_week   bigint;
    v_month  bigint;
    v_trend  text;
    v_top    text;
begin
    select o.active_users, o.total_attempts, o.avg_score, o.last_activity
      into v_totals
      from rpt_org_overview o
     where o.org_id = v_org;
    -- who started an attempt that ended this month: one row per member
    select count(*) into v_active
      from rpt_org_user u
     where u.org_id = v_org and u.last_day >= date_trunc('month', p_today)::date;
    select string_agg('{"day":"' || to_char(d.day, 'YYYY-MM-DD') || '","attempts":' || d.attempts
                      || '}', ',' order by d.day),
           coalesce(sum(d.attempts) filter (where d.day > p_today - 7), 0),
           coalesce(sum(d.attempts) filter (where d.day > p_today - 30), 0)
      into v_days, v_week, v_month
      from rpt_org_day d
     where d.org_id = v_org and d.day > p_today - 365;
    -- the trend's 30 days, each read by key (a day without attempts counts 0)
    select string_agg('{"day":"' || to_char(g.day, 'YYYY-MM-DD') || '","attempts":'
                      || coalesce(o.attempts, 0) || '}', ',' order by g.day)
      into v_trend
      from (select p_today - n as day from generate_series(29, 0, -1) n) g
      left join lateral (select d.attempts from rpt_org_day d
                          where d.org_id = v_org and d.day = g.day) o on true;
    select string_agg('{"scenario_id":"' || t.scenario_id || '","title":'
                      || coalesce(to_json(t.title)::text, 'null') || ',"attempts":' || t.attempts
                      || ',"avg_score":' || coalesce(practice_json_float(t.avg_score), 'null') || '}',
                      ',' order by t.attempts desc, t.scenario_id)
      into v_top
      from (select i.scenario_id, s.title, i.attempt_count as attempts, i.avg_score
              from rpt_scenario_insights i
              left join dim_scenarios s on s.scenario_id = i.scenario_id
             where i.org_id = v_org
             order by i.attempt_count desc, i.scenario_id
             limit p_top) t;
    return '{"refreshed_at":' || coalesce('"' || practice_json_instant(reports_refreshed_at()) || '"', 'null')
        || ',"active_users_this_month":' || v_active
        || ',"active_users":' || coalesce(v_totals.active_users, 0)
        || ',"total_attempts":' || coalesce(v_totals.total_attempts, 0)
        || ',"avg_score":' || coalesce(practice_json_float(v_totals.avg_score), 'null')
        || ',"last_activity":'
        || coalesce('"' || practice_json_instant(v_totals.last_activity) || '"', 'null')
        || ',"attempts_this_week":' || v_week
        || ',"attempts_this_month":' || v_month
        || ',"trend_30_days":[' || v_trend
        || '],"top_scenarios":[' || coalesce(v_top, '')
        || '],"heatmap_365_days":[' || coalesce(v_days, '') || ']}';
end
$$;
comment on function reports_org_overview_document(date, integer) is
    'SECURITY INVOKER: the org overview dashboard of the context org as of p_today (UTC), as the JSON document of practice.reporting.models.OrgOverview.';
revoke all on function reports_org_overview_document(date, integer) from public;
grant execute on function reports_org_overview_document(date, integer) to practice_app;

-- The team report's two reads, as PL/pgSQL with generic plans too: every
-- team's average over [p_from, p_to), ranked (0027's definer function, the
-- same statement), and the manager's team: its members and their assignments,
-- reached member by member.
create or replace function reports_team_ranks(p_from date, p_to date)
returns table (manager_user_id text, members bigint, scored bigint, avg_score numeric, rank bigint)
language plpgsql
stable
security definer
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
    return query
    with teams as (
        select m.manager_user_id, m.user_id
          from org_members m
         where m.org_id = (select practice_org())
           and m.manager_user_id is not null
           and m.deleted_at is null
           and (select practice_role()) in ('admin', 'manager', 'system')
    ), figures as (
        select t.manager_user_id, count(distinct t.user_id) as members,
               coalesce(sum(u.scored), 0)::bigint as scored,
               sum(u.score_sum) / nullif(sum(u.scored), 0) as avg_score
          from teams t
          left join rpt_user_day u
                 on u.org_id = (select practice_org()) and u.user_id = t.user_id
                and u.day >= p_from and u.day < p_to
         group by t.manager_user_id
    )
    select f.manager_user_id, f.members, f.scored, f.avg_score,
           rank() over (order by f.avg_score desc nulls last)
      from figures f;
end
$$;

create function reports_team_figures(p_manager text)
returns table (assignments bigint, completed bigint, members bigint)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
as $$
#variable_conflict use_column
declare
    v_org uuid := practice_org();
begin
    -- member by member: an aggregate per member is never flattened into a join
    -- that could read the org's assignments first
    return query
    select coalesce(sum(a.assigned), 0)::bigint, coalesce(sum(a.completed), 0)::bigint, count(*)
      from org_members m
     cross join lateral (
           select count(*) as assigned, count(x.completed_at) as completed
             from assignments x
            where x.org_id = m.org_id and x.assignee_user_id = m.user_id) a
     where m.org_id = v_org and m.manager_user_id = p_manager and m.deleted_at is null;
end
$$;
comment on function reports_team_figures(text) is
    'SECURITY INVOKER: p_manager''s team in the context org: how many assignments its members have, how many are done, how many members.';
revoke all on function reports_team_figures(text) from public;
grant execute on function reports_team_figures(text) to practice_app;

-- The scenario insights of the context org, most attempted first.
create function reports_scenario_insights()
returns table (
    scenario_id    uuid,
    title          text,
    attempt_count  bigint,
    avg_score      numeric,
    score_stddev   numeric,
    median_score   double precision,
    avg_duration   numeric,
    last_attempted timestamptz
)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_org uuid := practice_org();
begin
    return query
    select i.scenario_id, s.title, i.attempt_count, i.avg_score, i.score_stddev, i.median_score,
           i.avg_duration, i.last_attempted
      from rpt_scenario_insights i
      left join dim_scenarios s on s.scenario_id = i.scenario_id
     where i.org_id = v_org
     order by i.attempt_count desc, i.scenario_id;
end
$$;
comment on function reports_scenario_insights() is
    'SECURITY INVOKER: mv_scenario_insights of the context org with each scenario''s title, most attempted first.';
revoke all on function reports_scenario_insights() from public;
grant execute on function reports_scenario_insights() to practice_app;

-- The assignments of the context org (p_manager null) or of p_manager's team,
-- due first (5,000 at most); a team's are reached member by member.
create function reports_assignments(p_manager text)
returns table (
    id               uuid,
    scenario_id      uuid,
    title            text,
    assignee_user_id text,
    due_at           timestamptz,
    required         boolean,
    completed_at     timestamptz
)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_org uuid := practice_org();
begin
    if p_manager is null then
        return query
        select a.id, a.scenario_id, s.title, a.assignee_user_id, a.due_at, a.required, a.completed_at
          from assignments a
          left join dim_scenarios s on s.scenario_id = a.scenario_id
         where a.org_id = v_org
         order by a.due_at nulls last, a.id
         limit 5000;
    else
        return query
        select a.id, a.scenario_id, s.title, a.assignee_user_id, a.due_at, a.required, a.completed_at
          from org_members m
          -- member by member (offset 0: never flattened into a walk of the org's)
         cross join lateral (
               select x.* from assignments x
                where x.org_id = m.org_id and x.assignee_user_id = m.user_id offset 0) a
          left join dim_scenarios s on s.scenario_id = a.scenario_id
         where m.org_id = v_org and m.manager_user_id = p_manager and m.deleted_at is null
         order by a.due_at nulls last, a.id
         limit 5000;
    end if;
end
$$;
comment on function reports_assignments(text) is
    'SECURITY INVOKER: the assignments of the context org, or of p_manager''s current direct reports, due first, 5,000 at most.';
revoke all on function reports_assignments(text) from public;
grant execute on function reports_assignments(text) to practice_app;
