-- 0032: the org overview dashboard in one PL/pgSQL function.
--
-- The overview read its figures in three text statements (the org's row with
-- this month's active users, 365 days, the top scenarios), each planned again
-- on every request: about half of its database time was planning, as the
-- pool sends no prepared statements (PgBouncer / RDS Proxy). PL/pgSQL keeps
-- each statement's plan per connection. SECURITY INVOKER: row-level security
-- applies as to the statements it replaces, and every read is also filtered by
-- the context org.

create function reports_org_overview(p_today date, p_top integer)
returns table (
    active_users            bigint,
    total_attempts          bigint,
    avg_score               numeric,
    last_activity           timestamptz,
    active_users_this_month bigint,
    days                    date[],
    day_attempts            bigint[],
    top_scenarios           jsonb
)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
as $$
declare
    v_org uuid := practice_org();
begin
    select o.active_users, o.total_attempts, o.avg_score, o.last_activity
      into active_users, total_attempts, avg_score, last_activity
      from rpt_org_overview o
     where o.org_id = v_org;
    -- who started an attempt that ended this month: one row per member
    select count(*) into active_users_this_month
      from rpt_org_user u
     where u.org_id = v_org and u.last_day >= date_trunc('month', p_today)::date;
    -- the heatmap's days (the trend and the week / month windows are cut from them)
    select array_agg(d.day order by d.day), array_agg(d.attempts order by d.day)
      into days, day_attempts
      from rpt_org_day d
     where d.org_id = v_org and d.day > p_today - 365;
    select coalesce(jsonb_agg(t order by t.attempts desc, t.scenario_id), '[]')
      into top_scenarios
      from (select i.scenario_id, s.title, i.attempt_count as attempts, i.avg_score
              from rpt_scenario_insights i
              left join dim_scenarios s on s.scenario_id = i.scenario_id
             where i.org_id = v_org
             order by i.attempt_count desc, i.scenario_id
             limit p_top) t;
    return next;
end
$$;
comment on function reports_org_overview(date, integer) is
    'SECURITY INVOKER: the org overview dashboard of the context org as of p_today (UTC): its totals, active users this month, the last 365 days with attempts, the p_top scenarios by attempts.';
revoke all on function reports_org_overview(date, integer) from public;
grant execute on function reports_org_overview(date, integer) to practice_app;
