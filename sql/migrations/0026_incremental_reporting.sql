-- 0026: the reporting warehouse refreshes what changed, not everything.
--
-- The three materialized views of 0005 could only be refreshed whole (4.7 s
-- plain, 8.7 s CONCURRENTLY over 1M facts). They become summary tables
-- (rpt_*), maintained slice by slice, and the seed's three names become plain
-- views over them with the same columns, so the BI role and the org-scoped
-- v_* windows read what they read before.
--
-- How a change travels:
--   1. every insert, update and delete of fact_scenario_attempts logs the
--      slices it touched (org, user, scenario, UTC day started) in
--      rpt_changes, by statement-level triggers, in the same transaction as
--      the change: a fact write that commits has its log row, and one that
--      rolls back has none;
--   2. refresh_reporting_views() consumes the log (deleting the rows it sees)
--      and recomputes only those slices: the lowest levels from the facts
--      with the seed's own aggregates (avg, stddev, percentile_cont, ...),
--      the higher ones by summing counts and exact numeric sums of the
--      lower ones. A slice's rows are replaced by delete, insert and update of
--      the rows that differ, never by truncation: readers never wait;
--   3. refresh_reporting_views(full => true) recomputes every slice (after a
--      lost log or a schema change), still writing only the rows that differ.
--
-- Levels (slice keys in brackets):
--   rpt_user_day          [org, user, day]   facts that ended, by UTC day started
--   rpt_org_day           [org, day]         sum of rpt_user_day
--   rpt_org_user          [org, user]        count of rpt_user_day
--   rpt_org_overview      [org]              sums of rpt_org_day and rpt_org_user
--   rpt_leaderboard_month [org, user, month] facts with a score (seed aggregates)
--   rpt_scenario_insights [org, scenario]    facts with a score (seed aggregates)
--
-- A changed definition: the seed's attempts_this_week / attempts_this_month
-- counted attempts that ended in the last 7 / 30 days as of the last refresh.
-- They are now summed when read from rpt_org_day: the attempts (that ended)
-- started on the last 7 / 30 UTC days, today included. They are right between
-- refreshes and need no refresh to age.
--
-- Runs: a run is claimed in refresh_runs and worked under a transaction-level
-- advisory lock. A second run that finds the lock taken does not wait: it is
-- logged as 'skipped', naming the run it joined (joined_run_id).

-- ---------------------------------------------------------------------------
-- The change log
-- ---------------------------------------------------------------------------
create table rpt_changes (
    id          bigint generated always as identity primary key,
    org_id      uuid not null,
    user_id     text not null,
    scenario_id uuid,
    day         date not null,
    logged_at   timestamptz not null default now()
);
comment on table rpt_changes is
    'Slices of the reporting summaries that fact writes changed, consumed by refresh_reporting_views(). Written only by the triggers on fact_scenario_attempts.';

alter table rpt_changes enable row level security;
alter table rpt_changes force row level security;
-- The app role may only read it, and only as the system (how far behind a refresh is).
select practice_policy('rpt_changes', 'rpt_changes_system', 'select', practice_rule('system'));
grant select on rpt_changes to practice_app;
select practice_owner_policy('rpt_changes', 'all');

create function trigger_log_fact_changes()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    if tg_op in ('INSERT', 'UPDATE') then
        insert into rpt_changes (org_id, user_id, scenario_id, day)
        select distinct n.org_id, n.user_id, n.scenario_id, n.date_key from new_facts n;
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        insert into rpt_changes (org_id, user_id, scenario_id, day)
        select distinct o.org_id, o.user_id, o.scenario_id, o.date_key from old_facts o;
    end if;
    return null;
end
$$;
comment on function trigger_log_fact_changes() is
    'SECURITY DEFINER trigger: logs the reporting slices a fact insert, update or delete touched (rpt_changes), in the writing transaction.';
revoke all on function trigger_log_fact_changes() from public;

create trigger log_fact_inserts after insert on fact_scenario_attempts
    referencing new table as new_facts
    for each statement execute function trigger_log_fact_changes();
create trigger log_fact_updates after update on fact_scenario_attempts
    referencing old table as old_facts new table as new_facts
    for each statement execute function trigger_log_fact_changes();
create trigger log_fact_deletes after delete on fact_scenario_attempts
    referencing old table as old_facts
    for each statement execute function trigger_log_fact_changes();

-- The recent-attempts dashboard pages an org's facts newest first by keyset.
create index idx_fact_attempts_org_started on fact_scenario_attempts (org_id, started_at desc, attempt_id desc);

-- ---------------------------------------------------------------------------
-- Summary tables
-- ---------------------------------------------------------------------------
create table rpt_user_day (
    org_id        uuid not null references orgs (id) on delete cascade,
    user_id       text not null,
    day           date not null,
    attempts      bigint not null,
    scored        bigint not null,
    score_sum     numeric,
    duration_sum  bigint,
    last_activity timestamptz,
    primary key (org_id, user_id, day)
);
create index rpt_user_day_org_day_idx on rpt_user_day (org_id, day);
comment on table rpt_user_day is
    'Per member and UTC day started: attempts that ended, how many had a score, their score and duration sums, the last end.';

create table rpt_org_day (
    org_id        uuid not null references orgs (id) on delete cascade,
    day           date not null,
    attempts      bigint not null,
    scored        bigint not null,
    score_sum     numeric,
    last_activity timestamptz,
    primary key (org_id, day)
);
comment on table rpt_org_day is
    'Per org and UTC day started: attempts that ended (trend, heatmap, this week/month), scored count and score sum.';

create table rpt_org_user (
    org_id  uuid not null references orgs (id) on delete cascade,
    user_id text not null,
    days    bigint not null,
    primary key (org_id, user_id)
);
comment on table rpt_org_user is
    'Per org and member: the days with attempts that ended (a row = an active user; counted from rpt_user_day''s key alone).';

create table rpt_org_overview (
    org_id         uuid primary key references orgs (id) on delete cascade,
    active_users   bigint not null,
    total_attempts bigint not null,
    scored         bigint not null,
    score_sum      numeric,
    avg_score      numeric,
    last_activity  timestamptz
);
comment on table rpt_org_overview is 'Org-wide KPIs (mv_org_overview without its time windows).';

create table rpt_leaderboard_month (
    org_id              uuid not null references orgs (id) on delete cascade,
    user_id             text not null,
    month               timestamptz not null,
    avg_score           numeric,
    attempts            bigint not null,
    total_duration      bigint,
    avg_talk_percentage double precision,
    primary key (org_id, user_id, month)
);
create index rpt_leaderboard_month_org_month_idx on rpt_leaderboard_month (org_id, month, avg_score desc);
comment on table rpt_leaderboard_month is 'Monthly (UTC, by start) per-member figures of scored attempts.';

create table rpt_scenario_insights (
    org_id         uuid not null references orgs (id) on delete cascade,
    scenario_id    uuid not null,
    attempt_count  bigint not null,
    avg_score      numeric,
    score_stddev   numeric,
    avg_duration   numeric,
    median_score   double precision,
    last_attempted timestamptz,
    primary key (org_id, scenario_id)
);
comment on table rpt_scenario_insights is 'Per-scenario performance of scored attempts; a high score_stddev hints at an unclear rubric.';

-- RLS: per-member rows by the member rule (a trainee their own, a manager
-- their team, an admin the org); org-level aggregates to the org; the BI role
-- reads everything; the definer refresh writes as the owner.
do $rls$
declare
    v_table text;
begin
    foreach v_table in array array['rpt_user_day', 'rpt_org_day', 'rpt_org_user', 'rpt_org_overview',
                                   'rpt_leaderboard_month', 'rpt_scenario_insights'] loop
        execute format('alter table %I enable row level security', v_table);
        execute format('alter table %I force row level security', v_table);
        perform practice_owner_policy(v_table::regclass, 'all');
        execute format('create policy %I on %I for select to practice_reporting using (true)',
                       v_table || '_reporting', v_table);
        execute format('grant select on %I to practice_app, practice_reporting', v_table);
    end loop;
end
$rls$;
select practice_policy('rpt_user_day', 'rpt_user_day_select', 'select',
    format('(%s) or (%s and %s)', practice_rule('member', 'user_id'), practice_rule('org'), practice_rule('system')));
select practice_policy('rpt_org_user', 'rpt_org_user_select', 'select',
    format('(%s) or (%s and %s)', practice_rule('member', 'user_id'), practice_rule('org'), practice_rule('system')));
select practice_policy('rpt_leaderboard_month', 'rpt_leaderboard_month_select', 'select',
    format('(%s) or (%s and %s)', practice_rule('member', 'user_id'), practice_rule('org'), practice_rule('system')));
select practice_policy('rpt_org_day', 'rpt_org_day_select', 'select', practice_rule('org'));
select practice_policy('rpt_org_overview', 'rpt_org_overview_select', 'select', practice_rule('org'));
select practice_policy('rpt_scenario_insights', 'rpt_scenario_insights_select', 'select', practice_rule('org'));

-- ---------------------------------------------------------------------------
-- The seed's names, as views with the seed's columns
-- ---------------------------------------------------------------------------
drop view v_leaderboard_month, v_org_overview, v_scenario_insights;
drop materialized view mv_leaderboard_month, mv_org_overview, mv_scenario_insights;

create view mv_leaderboard_month as
    select org_id, user_id, month, avg_score, attempts, total_duration, avg_talk_percentage
      from rpt_leaderboard_month;
comment on view mv_leaderboard_month is
    'Monthly (UTC) per-user averages of scored attempts; a view over rpt_leaderboard_month, kept current by refresh_reporting_views().';

create view mv_org_overview as
    select o.org_id, o.active_users, o.total_attempts, o.avg_score, o.last_activity,
           coalesce((select sum(d.attempts) from rpt_org_day d
                      where d.org_id = o.org_id
                        and d.day >= (now() at time zone 'UTC')::date - 6), 0)::bigint as attempts_this_week,
           coalesce((select sum(d.attempts) from rpt_org_day d
                      where d.org_id = o.org_id
                        and d.day >= (now() at time zone 'UTC')::date - 29), 0)::bigint as attempts_this_month
      from rpt_org_overview o;
comment on view mv_org_overview is
    'Org-wide KPIs; attempts_this_week/month count the attempts started on the last 7/30 UTC days (today included), summed when read.';

create view mv_scenario_insights as
    select org_id, scenario_id, attempt_count, avg_score, score_stddev, avg_duration, median_score, last_attempted
      from rpt_scenario_insights;
comment on view mv_scenario_insights is
    'Per-scenario performance of each org; a view over rpt_scenario_insights.';

create view v_leaderboard_month with (security_barrier = true) as
    select * from mv_leaderboard_month where org_id = (select practice_org());
comment on view v_leaderboard_month is 'mv_leaderboard_month restricted to the context org.';
create view v_org_overview with (security_barrier = true) as
    select * from mv_org_overview where org_id = (select practice_org());
comment on view v_org_overview is 'mv_org_overview restricted to the context org.';
create view v_scenario_insights with (security_barrier = true) as
    select * from mv_scenario_insights where org_id = (select practice_org());
comment on view v_scenario_insights is 'mv_scenario_insights restricted to the context org.';

grant select on v_leaderboard_month, v_org_overview, v_scenario_insights to practice_app;
grant select on mv_leaderboard_month, mv_org_overview, mv_scenario_insights to practice_reporting;

-- ---------------------------------------------------------------------------
-- Runs
-- ---------------------------------------------------------------------------
alter table refresh_runs drop constraint refresh_runs_status_check;
alter table refresh_runs add constraint refresh_runs_status_check
    check (status in ('running', 'succeeded', 'failed', 'skipped'));
alter table refresh_runs
    add column full_rebuild  boolean not null default false,
    add column joined_run_id bigint,
    add column changes       integer,
    add column rows_written  integer;
comment on column refresh_runs.joined_run_id is
    'A skipped run: the run that was working when it came (no foreign key: that run commits later).';
comment on column refresh_runs.changes is 'Change-log rows consumed (NULL for a full rebuild).';
comment on column refresh_runs.rows_written is 'Summary rows inserted, updated or deleted.';

-- ---------------------------------------------------------------------------
-- The merge: replaces the rows of a scope with fresh ones, writing only what
-- differs. p_fresh is a query of the fresh rows (keys then values), p_scope a
-- condition on t (the table) saying which rows the fresh query covers.
-- Parameters $1..$4 of both are the changed slices: org, user, scenario, day.
-- ---------------------------------------------------------------------------
create function rpt_merge(p_table regclass, p_keys text[], p_values text[], p_fresh text, p_scope text,
                          p_org uuid[], p_user text[], p_scenario uuid[], p_day date[])
returns integer
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_columns text := array_to_string(p_keys || p_values, ', ');
    v_match   text;
    v_written integer;
begin
    select string_agg(format('f.%1$I = t.%1$I', k), ' and ') into v_match from unnest(p_keys) k;
    execute format($sql$
        with fresh as materialized (%1$s),
        removed as (
            delete from %2$s t
             where (%3$s)
               and not exists (select 1 from fresh f where %4$s)
            returning 1),
        written as (
            insert into %2$s as t (%5$s) select %5$s from fresh
            on conflict (%6$s) do update set (%7$s) = row(%8$s)
            where row(%9$s) is distinct from row(%8$s)
            returning 1)
        select ((select count(*) from removed) + (select count(*) from written))::integer
        $sql$,
        p_fresh, p_table, p_scope, v_match, v_columns,
        array_to_string(p_keys, ', '),
        array_to_string(p_values, ', '),
        (select string_agg(format('excluded.%I', v), ', ') from unnest(p_values) v),
        (select string_agg(format('t.%I', v), ', ') from unnest(p_values) v))
    into v_written
    using p_org, p_user, p_scenario, p_day;
    return v_written;
end
$$;
comment on function rpt_merge(regclass, text[], text[], text, text, uuid[], text[], uuid[], date[]) is
    'Internal (refresh_reporting_views): replaces the rows of a scope of a summary table with fresh ones, writing only the rows that differ.';
revoke all on function rpt_merge(regclass, text[], text[], text, text, uuid[], text[], uuid[], date[]) from public;

-- Recomputes every summary for the given changed slices, or all of them when
-- p_full. Returns the rows written.
create function rpt_recompute(p_full boolean, p_org uuid[], p_user text[], p_scenario uuid[], p_day date[])
returns integer
language plpgsql
set search_path = public, pg_temp
set timezone = 'UTC'
as $$
declare
    c    constant text := 'unnest($1, $2, $3, $4) as c(org_id, user_id, scenario_id, day)';
    v_n  integer := 0;
    -- Each level: the keys it covers (incremental), the rows of those keys.
    k_ud text := format('select distinct org_id, user_id, day from %s', c);
    k_od text := format('select distinct org_id, day from %s', c);
    k_ou text := format('select distinct org_id, user_id from %s', c);
    k_o  text := format('select distinct org_id from %s', c);
    k_l  text := format('select distinct org_id, user_id, date_trunc(''month'', day::timestamp) at time zone ''UTC'' as month from %s', c);
    k_s  text := format('select distinct org_id, scenario_id from %s where scenario_id is not null', c);
    w    text;
    v_plan text[] := array[current_setting('enable_seqscan'), current_setting('enable_hashjoin'),
                           current_setting('enable_mergejoin')];
begin
    if not p_full then
        -- A member's slices are a few index ranges of large tables; the planner
        -- cannot see how few keys the arrays hold and would hash whole tables.
        -- Scenario slices, which may span most facts, get the planner's choice.
        perform set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
                set_config('enable_mergejoin', 'off', true);
    end if;
    -- rpt_user_day, from the facts that ended.
    w := case when p_full then '' else format(
        'join (%s) k on k.org_id = f.org_id and k.user_id = f.user_id and k.day = f.date_key', k_ud) end;
    v_n := v_n + rpt_merge('rpt_user_day', array['org_id', 'user_id', 'day'],
        array['attempts', 'scored', 'score_sum', 'duration_sum', 'last_activity'],
        format('select f.org_id, f.user_id, f.date_key as day, count(*) as attempts, count(f.score) as scored,
                       sum(f.score) as score_sum, sum(f.duration_seconds)::bigint as duration_sum,
                       max(f.ended_at) as last_activity
                  from fact_scenario_attempts f %s
                 where f.ended_at is not null
                 group by f.org_id, f.user_id, f.date_key', w),
        case when p_full then 'true' else format('(t.org_id, t.user_id, t.day) in (%s)', k_ud) end,
        p_org, p_user, p_scenario, p_day);

    -- rpt_org_day, the sum of its members' days.
    w := case when p_full then '' else format('join (%s) k on k.org_id = u.org_id and k.day = u.day', k_od) end;
    v_n := v_n + rpt_merge('rpt_org_day', array['org_id', 'day'],
        array['attempts', 'scored', 'score_sum', 'last_activity'],
        format('select u.org_id, u.day, sum(u.attempts)::bigint as attempts, sum(u.scored)::bigint as scored,
                       sum(u.score_sum) as score_sum, max(u.last_activity) as last_activity
                  from rpt_user_day u %s
                 group by u.org_id, u.day', w),
        case when p_full then 'true' else format('(t.org_id, t.day) in (%s)', k_od) end,
        p_org, p_user, p_scenario, p_day);

    -- rpt_org_user, the sum of a member's days.
    w := case when p_full then '' else format('join (%s) k on k.org_id = u.org_id and k.user_id = u.user_id', k_ou) end;
    v_n := v_n + rpt_merge('rpt_org_user', array['org_id', 'user_id'], array['days'],
        format('select u.org_id, u.user_id, count(*) as days
                  from rpt_user_day u %s
                 group by u.org_id, u.user_id', w),
        case when p_full then 'true' else format('(t.org_id, t.user_id) in (%s)', k_ou) end,
        p_org, p_user, p_scenario, p_day);

    -- rpt_org_overview, from the org's days and members.
    w := case when p_full then 'select id as org_id from orgs' else k_o end;
    v_n := v_n + rpt_merge('rpt_org_overview', array['org_id'],
        array['active_users', 'total_attempts', 'scored', 'score_sum', 'avg_score', 'last_activity'],
        format('select k.org_id, u.active_users, d.total_attempts, d.scored, d.score_sum,
                       d.score_sum / nullif(d.scored, 0)::numeric as avg_score, d.last_activity
                  from (%s) k
                  cross join lateral (select count(*)::bigint as active_users from rpt_org_user u
                                       where u.org_id = k.org_id) u
                  cross join lateral (select sum(d.attempts)::bigint as total_attempts,
                                             sum(d.scored)::bigint as scored, sum(d.score_sum) as score_sum,
                                             max(d.last_activity) as last_activity
                                        from rpt_org_day d where d.org_id = k.org_id) d
                 where d.total_attempts > 0', w),
        case when p_full then 'true' else format('t.org_id in (%s)', k_o) end,
        p_org, p_user, p_scenario, p_day);

    -- rpt_leaderboard_month, from the scored facts (the seed's aggregates).
    w := case when p_full then '' else format(
        'join (%s) k on k.org_id = f.org_id and k.user_id = f.user_id
          and f.started_at >= k.month and f.started_at < k.month + interval ''1 month''', k_l) end;
    v_n := v_n + rpt_merge('rpt_leaderboard_month', array['org_id', 'user_id', 'month'],
        array['avg_score', 'attempts', 'total_duration', 'avg_talk_percentage'],
        format('select f.org_id, f.user_id, date_trunc(''month'', f.started_at, ''UTC'') as month,
                       avg(f.score) as avg_score, count(*) as attempts,
                       sum(f.duration_seconds) as total_duration,
                       avg(f.talk_ms::float / nullif(f.talk_ms::bigint + f.listen_ms, 0) * 100) as avg_talk_percentage
                  from fact_scenario_attempts f %s
                 where f.score is not null
                 group by f.org_id, f.user_id, date_trunc(''month'', f.started_at, ''UTC'')', w),
        case when p_full then 'true' else format('(t.org_id, t.user_id, t.month) in (%s)', k_l) end,
        p_org, p_user, p_scenario, p_day);

    perform set_config('enable_seqscan', v_plan[1], true), set_config('enable_hashjoin', v_plan[2], true),
            set_config('enable_mergejoin', v_plan[3], true);

    -- rpt_scenario_insights, from the scored facts (the seed's aggregates).
    w := case when p_full then '' else format(
        'join (%s) k on k.org_id = f.org_id and k.scenario_id = f.scenario_id', k_s) end;
    v_n := v_n + rpt_merge('rpt_scenario_insights', array['org_id', 'scenario_id'],
        array['attempt_count', 'avg_score', 'score_stddev', 'avg_duration', 'median_score', 'last_attempted'],
        format('select f.org_id, f.scenario_id, count(*) as attempt_count, avg(f.score) as avg_score,
                       stddev(f.score) as score_stddev, avg(f.duration_seconds) as avg_duration,
                       percentile_cont(0.5) within group (order by f.score) as median_score,
                       max(f.ended_at) as last_attempted
                  from fact_scenario_attempts f %s
                 where f.score is not null and f.scenario_id is not null
                 group by f.org_id, f.scenario_id', w),
        case when p_full then 'true' else format('(t.org_id, t.scenario_id) in (%s)', k_s) end,
        p_org, p_user, p_scenario, p_day);
    return v_n;
end
$$;
comment on function rpt_recompute(boolean, uuid[], text[], uuid[], date[]) is
    'Internal (refresh_reporting_views): recomputes the summaries of the changed slices, or all (p_full); returns the rows written.';
revoke all on function rpt_recompute(boolean, uuid[], text[], uuid[], date[]) from public;

-- ---------------------------------------------------------------------------
-- refresh_reporting_views
-- ---------------------------------------------------------------------------
drop function refresh_reporting_views(text, text);

-- The lock: one pair of keys for "the refresh is working", and the working
-- run's id as the second key of another lock, so a run that skips can name it.
create function refresh_lock_class()
returns integer
language sql
immutable
set search_path = public, pg_temp
as $$ select 727140026 $$;
comment on function refresh_lock_class() is
    'The advisory lock class of the working refresh run (pg_locks.classid; objid = the run id).';
revoke all on function refresh_lock_class() from public;

-- SECURITY DEFINER exception: writes the summary tables and refresh_runs, which
-- the app role may only read. Allowed contexts: admin, system, or none (psql).
--
-- Claims a run and, when no other run is working, works it under a
-- transaction-level advisory lock: consumes the change log and recomputes the
-- changed slices (all slices when full). When another run is working, this one
-- does not wait: it is logged 'skipped' with joined_run_id = the working run.
-- A failure does not raise: the summaries keep their previous content and the
-- run is returned with status 'failed' and the error; callers check status.
create function refresh_reporting_views(
    p_trigger text default 'manual', p_requested_by text default null, full boolean default false)
returns refresh_runs
language plpgsql
volatile
security definer
set search_path = public, pg_temp
set timezone = 'UTC'
as $$
declare
    v_role     text := nullif(current_setting('app.role', true), '');
    v_full     constant boolean := coalesce(refresh_reporting_views.full, false);
    v_run      refresh_runs;
    v_t0       timestamptz := clock_timestamp();
    v_joined   bigint;
    v_org      uuid[];
    v_user     text[];
    v_scenario uuid[];
    v_day      date[];
    v_changes  integer;
    v_written  integer;
begin
    if v_role is not null and v_role not in ('admin', 'system') then
        raise exception 'refresh_reporting_views: role % may not refresh reporting views', v_role
            using errcode = '42501';
    end if;
    if p_trigger is null or p_trigger not in ('schedule', 'manual') then
        raise exception 'refresh_reporting_views: p_trigger must be ''schedule'' or ''manual''' using errcode = '22023';
    end if;

    insert into refresh_runs (trigger, requested_by, started_at, status, full_rebuild)
    values (p_trigger, coalesce(p_requested_by, nullif(current_setting('app.user_id', true), '')), v_t0,
            'running', v_full)
    returning * into v_run;

    if not pg_try_advisory_xact_lock(refresh_lock_class(), 0) then
        select l.objid::bigint into v_joined
          from pg_locks l
         where l.locktype = 'advisory' and l.classid = refresh_lock_class()::oid
           and l.objid <> 0 and l.objsubid = 2 and l.granted
         order by l.objid desc
         limit 1;
        update refresh_runs r
           set status = 'skipped', joined_run_id = v_joined, finished_at = clock_timestamp(),
               duration_ms = (extract(epoch from clock_timestamp() - v_t0) * 1000)::integer
         where r.id = v_run.id
        returning * into v_run;
        return v_run;
    end if;
    perform pg_advisory_xact_lock(refresh_lock_class(), v_run.id::integer);

    begin
        if v_full then
            delete from rpt_changes;
            get diagnostics v_changes = row_count;
            v_written := rpt_recompute(true, null, null, null, null);
            v_changes := null;
        else
            with consumed as (
                delete from rpt_changes returning org_id, user_id, scenario_id, day
            ), slices as (
                select distinct org_id, user_id, scenario_id, day from consumed
            )
            select array_agg(org_id), array_agg(user_id), array_agg(scenario_id), array_agg(day),
                   (select count(*) from consumed)
              into v_org, v_user, v_scenario, v_day, v_changes
              from slices;
            v_written := case when coalesce(v_changes, 0) = 0 then 0
                              else rpt_recompute(false, v_org, v_user, v_scenario, v_day) end;
        end if;

        update refresh_runs r
           set status       = 'succeeded',
               finished_at  = clock_timestamp(),
               duration_ms  = (extract(epoch from clock_timestamp() - v_t0) * 1000)::integer,
               changes      = v_changes,
               rows_written = v_written
         where r.id = v_run.id
        returning * into v_run;
    exception when others then
        update refresh_runs r
           set status      = 'failed',
               finished_at = clock_timestamp(),
               duration_ms = (extract(epoch from clock_timestamp() - v_t0) * 1000)::integer,
               error       = sqlstate || ': ' || sqlerrm
         where r.id = v_run.id
        returning * into v_run;
    end;
    return v_run;
end
$$;
comment on function refresh_reporting_views(text, text, boolean) is
    'SECURITY DEFINER: folds the logged fact changes into the reporting summaries (all slices when full); a concurrent second run skips, naming the working one. Returns its refresh_runs row.';
revoke all on function refresh_reporting_views(text, text, boolean) from public;
grant execute on function refresh_reporting_views(text, text, boolean) to practice_app;

-- Where the working run is, for a caller polling one that has not committed yet.
create function refresh_run_working(p_id bigint)
returns boolean
language sql
stable
set search_path = public, pg_temp
as $$
    select exists (select 1 from pg_locks l
                    where l.locktype = 'advisory' and l.classid = refresh_lock_class()::oid
                      and l.objid = p_id::oid and l.objsubid = 2 and l.granted)
$$;
comment on function refresh_run_working(bigint) is
    'True while refresh run p_id is working (it holds its advisory lock; its row is visible once it commits).';
revoke all on function refresh_run_working(bigint) from public;
grant execute on function refresh_run_working(bigint) to practice_app;
grant execute on function refresh_lock_class() to practice_app;

-- The summaries start from what the facts say now.
select refresh_reporting_views('manual', 'migration 0026', full => true);
