-- 0027: what the dashboards and the weekly digest read beyond the summaries.
--
--   org_members.digest_opt_out   a member's "no weekly digest", set by the
--                                member through reports_set_digest_opt_out();
--   reports_refreshed_at()       when the summaries were last refreshed (every
--                                dashboard says it; refresh_runs itself is for
--                                admins);
--   reports_team_ranks()         each team's average of a month in the caller's
--                                org (a team: a manager's current direct
--                                reports), aggregates only, so a manager can see
--                                where their team stands without seeing
--                                another team's members;
--   assignments_system_select    the digest (the system principal of one org)
--                                reads that org's assignments.

alter table org_members add column digest_opt_out boolean not null default false;
comment on column org_members.digest_opt_out is 'The member asked not to receive the weekly team digest.';

-- SECURITY DEFINER exception: org_members is written only by the Clerk sync
-- and admins; this sets one column of the caller's own row, nothing else.
create function reports_set_digest_opt_out(p_opt_out boolean)
returns boolean
language sql
volatile
security definer
set search_path = public, pg_temp
as $$
    update org_members m
       set digest_opt_out = p_opt_out
     where m.org_id = (select practice_org())
       and m.user_id = (select practice_user())
       and m.deleted_at is null
    returning m.digest_opt_out
$$;
comment on function reports_set_digest_opt_out(boolean) is
    'SECURITY DEFINER (narrow): sets digest_opt_out on the caller''s own membership; NULL when the caller has none.';
revoke all on function reports_set_digest_opt_out(boolean) from public;
grant execute on function reports_set_digest_opt_out(boolean) to practice_app;
select practice_owner_policy('org_members', 'update');

-- SECURITY DEFINER exception: refresh_runs is readable by admins and the
-- system only; this says one timestamp to anyone with a context.
create function reports_refreshed_at()
returns timestamptz
language sql
stable
security definer
set search_path = public, pg_temp
as $$
    select max(r.finished_at) from refresh_runs r
     where r.status = 'succeeded' and (select practice_role()) is not null
$$;
comment on function reports_refreshed_at() is
    'SECURITY DEFINER: when the reporting summaries were last refreshed successfully.';
revoke all on function reports_refreshed_at() from public;
grant execute on function reports_refreshed_at() to practice_app;

-- SECURITY DEFINER exception: per-member rows are visible to a manager only for
-- their own team; this returns team aggregates of the context org and nothing
-- about any member.
create function reports_team_ranks(p_from date, p_to date)
returns table (manager_user_id text, members bigint, scored bigint, avg_score numeric, rank bigint)
language sql
stable
security definer
set search_path = public, pg_temp
as $$
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
      from figures f
$$;
comment on function reports_team_ranks(date, date) is
    'SECURITY DEFINER: each team''s (a manager''s direct reports) average score over [p_from, p_to) in the context org, ranked; aggregates only.';
revoke all on function reports_team_ranks(date, date) from public;
grant execute on function reports_team_ranks(date, date) to practice_app;

select practice_policy('assignments', 'assignments_system_select', 'select',
    format('%s and %s', practice_rule('org'), practice_rule('system')));
