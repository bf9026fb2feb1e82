-- 0030: the incremental refresh folds in what changed, not the slices it touched.
--
-- 0026 logged which slices a fact write touched and recomputed each touched
-- slice from the facts. A slice can be large: an (org, scenario) holds every
-- attempt at that scenario, an (org, user, month) a month of a member's; 1,000
-- new attempts over 20 orgs touched nearly every slice and re-read about a
-- million facts (4.1 s over 1M facts, where the issue asks for 100 ms).
--
-- Now the log carries the change itself: every fact row a write removed (sign
-- -1) or added (sign +1), with the values the summaries use. A refresh adds the
-- signed sums into the stored figures, whatever the size of the slice:
--   * counts and sums (numeric, exact) are added; averages are a stored sum
--     over a stored count, divided as avg() divides;
--   * the standard deviation comes from the count, the sum and the sum of
--     squares, with numeric_stddev's own arithmetic (rpt_stddev): the same
--     digits as stddev();
--   * a maximum (last activity) is the greater of the stored one and what was
--     added, unless a removed row held that value: then it is read again,
--     from the slice's rows;
--   * the median keeps an anchor: the row at rank floor((n - 1) / 2) in (score,
--     attempt_id) order. A refresh counts how many changed rows fall below it,
--     which says where the anchor now stands, and walks the index from it by
--     that many rows (one probe, a few rows); the next row up gives the upper
--     middle for an even count. percentile_cont's interpolation is then done in
--     float8 as percentile_cont does it (rpt_median);
--   * the talk percentage average sums float8 ratios, which cannot be added
--     exactly; the summaries sum them as numeric (the float's 15 significant
--     digits, as the float8 -> numeric cast gives them), so incremental and
--     full agree to the digit and drift is impossible; against the seed's
--     float avg() they differ below 1e-13 relative.
-- The fold reads the facts only to move an anchor or re-read a removed
-- maximum, in the same statement that consumes the log: one snapshot, so what
-- it reads is exactly the facts the consumed changes describe.
--
-- The full rebuild (refresh_reporting_views(full => true)) computes the same
-- stored columns from the facts, anchors included, still writing only the rows
-- that differ.

-- ---------------------------------------------------------------------------
-- The change log carries the rows
-- ---------------------------------------------------------------------------
delete from rpt_changes;  -- the full rebuild at the end covers whatever was logged
alter table rpt_changes
    add column sign             smallint not null default 1 check (sign in (-1, 1)),
    add column attempt_id       uuid,
    add column started_at       timestamptz,
    add column ended_at         timestamptz,
    add column score            numeric,
    add column duration_seconds integer,
    add column talk_pct         double precision;
comment on table rpt_changes is
    'Fact rows a write removed (sign -1) or added (sign +1), with the values the reporting summaries use; consumed by refresh_reporting_views(). Written only by the triggers on fact_scenario_attempts.';

-- The seed's talk percentage of a fact (mv_leaderboard_month averaged it), in
-- one place for the triggers and the rebuild. Plain SQL without settings, so
-- the planner inlines it: the rebuild evaluates it per fact.
create function rpt_talk_percentage(talk_ms integer, listen_ms integer)
returns double precision
language sql
immutable
parallel safe
as $$ select talk_ms::float / nullif(talk_ms::bigint + listen_ms, 0) * 100 $$;
comment on function rpt_talk_percentage(integer, integer) is
    'The talk share of a fact''s conversation in percent (NULL without talk or listen time), as the seed''s leaderboard defines it.';
revoke all on function rpt_talk_percentage(integer, integer) from public;

create or replace function trigger_log_fact_changes()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    -- An update logs only the rows whose reported values changed: the old row
    -- removed, the new one added.
    insert into rpt_changes (sign, attempt_id, org_id, user_id, scenario_id, day, started_at, ended_at,
                             score, duration_seconds, talk_pct)
    select r.sign, r.attempt_id, r.org_id, r.user_id, r.scenario_id, r.date_key, r.started_at, r.ended_at,
           r.score, r.duration_seconds, rpt_talk_percentage(r.talk_ms, r.listen_ms)
      from (select -1::smallint as sign, o.* from old_facts o
             where not exists (select 1 from new_facts n where n.attempt_id = o.attempt_id
                                  and (n.org_id, n.user_id, n.scenario_id, n.started_at, n.ended_at, n.score,
                                       n.duration_seconds, n.talk_ms, n.listen_ms)
                                      is not distinct from
                                      (o.org_id, o.user_id, o.scenario_id, o.started_at, o.ended_at, o.score,
                                       o.duration_seconds, o.talk_ms, o.listen_ms))
            union all
            select 1::smallint, n.* from new_facts n
             where not exists (select 1 from old_facts o where o.attempt_id = n.attempt_id
                                  and (n.org_id, n.user_id, n.scenario_id, n.started_at, n.ended_at, n.score,
                                       n.duration_seconds, n.talk_ms, n.listen_ms)
                                      is not distinct from
                                      (o.org_id, o.user_id, o.scenario_id, o.started_at, o.ended_at, o.score,
                                       o.duration_seconds, o.talk_ms, o.listen_ms))) r;
    return null;
end
$$;
comment on function trigger_log_fact_changes() is
    'SECURITY DEFINER trigger (AFTER UPDATE): logs the fact rows an update changed, old removed and new added (rpt_changes), in the writing transaction.';

-- An insert has no old rows and a delete no new ones (a trigger cannot name
-- a transition table its event lacks): each gets a function of its own.
drop trigger log_fact_inserts on fact_scenario_attempts;
drop trigger log_fact_deletes on fact_scenario_attempts;
create function trigger_log_fact_inserts()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    insert into rpt_changes (sign, attempt_id, org_id, user_id, scenario_id, day, started_at, ended_at,
                             score, duration_seconds, talk_pct)
    select 1, n.attempt_id, n.org_id, n.user_id, n.scenario_id, n.date_key, n.started_at, n.ended_at,
           n.score, n.duration_seconds, rpt_talk_percentage(n.talk_ms, n.listen_ms)
      from new_facts n;
    return null;
end
$$;
create function trigger_log_fact_deletes()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    insert into rpt_changes (sign, attempt_id, org_id, user_id, scenario_id, day, started_at, ended_at,
                             score, duration_seconds, talk_pct)
    select -1, o.attempt_id, o.org_id, o.user_id, o.scenario_id, o.date_key, o.started_at, o.ended_at,
           o.score, o.duration_seconds, rpt_talk_percentage(o.talk_ms, o.listen_ms)
      from old_facts o;
    return null;
end
$$;
comment on function trigger_log_fact_inserts() is
    'SECURITY DEFINER trigger: logs the fact rows an insert added (rpt_changes), in the writing transaction.';
comment on function trigger_log_fact_deletes() is
    'SECURITY DEFINER trigger: logs the fact rows a delete removed (rpt_changes), in the writing transaction.';
revoke all on function trigger_log_fact_inserts() from public;
revoke all on function trigger_log_fact_deletes() from public;
create trigger log_fact_inserts after insert on fact_scenario_attempts
    referencing new table as new_facts
    for each statement execute function trigger_log_fact_inserts();
create trigger log_fact_deletes after delete on fact_scenario_attempts
    referencing old table as old_facts
    for each statement execute function trigger_log_fact_deletes();

-- The median's index: a scenario's scored facts in (score, attempt_id) order.
-- It serves what idx_fact_attempts_scenario served (its first two columns).
drop index idx_fact_attempts_scenario;
create index idx_fact_attempts_scenario on fact_scenario_attempts (org_id, scenario_id, score, attempt_id);

-- ---------------------------------------------------------------------------
-- The stored figures the fold adds into
-- ---------------------------------------------------------------------------
alter table rpt_user_day add column timed bigint not null default 0;
comment on column rpt_user_day.timed is 'How many of the attempts have a duration (duration_sum is NULL when none).';


-- Who was active this month is then one row per member, not one per member-day.
alter table rpt_org_user add column last_day date;
comment on column rpt_org_user.last_day is 'The latest UTC day the member started an attempt that ended.';

alter table rpt_leaderboard_month
    add column score_sum numeric,
    add column timed     bigint not null default 0,
    add column talk_sum  numeric,
    add column talk_n    bigint not null default 0;
comment on column rpt_leaderboard_month.talk_sum is
    'Sum of the talk percentages as numeric (each the float8 value''s 15 significant digits); avg_talk_percentage = talk_sum / talk_n.';

alter table rpt_scenario_insights
    add column score_sum    numeric,
    add column score_sq     numeric,
    add column duration_sum bigint,
    add column timed        bigint not null default 0,
    add column anchor_score numeric,
    add column anchor_id    uuid;
comment on column rpt_scenario_insights.anchor_score is
    'The median anchor: the row at rank floor((attempt_count - 1) / 2) of the slice in (score, attempt_id) order (with anchor_id).';

create type rpt_score_key as (score numeric, attempt_id uuid);
comment on type rpt_score_key is 'A scored fact''s place in (score, attempt_id) order (the median anchor).';

-- numeric_stddev_internal's arithmetic: (n*sum(x^2) - sum(x)^2) / (n*(n-1)) at
-- the division's own scale, its square root at that same scale (computed
-- wider, then rounded).
create function rpt_stddev(n bigint, s numeric, sq numeric)
returns numeric
language sql
immutable
parallel safe
set search_path = public, pg_temp
as $$
    select case when n < 2 then null
                when n * sq - s * s <= 0 then 0::numeric
                else round(sqrt(((n * sq - s * s) / (n * (n - 1))) * 1.000000000000000000000000000000),
                           scale((n * sq - s * s) / (n * (n - 1)))) end
$$;
comment on function rpt_stddev(bigint, numeric, numeric) is
    'stddev() of a set from its count, sum and sum of squares, to the digit.';
revoke all on function rpt_stddev(bigint, numeric, numeric) from public;

-- percentile_cont(0.5): the middle value, or the float8 interpolation of the
-- two middle values (lo + 0.5 * (hi - lo)).
create function rpt_median(n bigint, lo numeric, hi numeric)
returns double precision
language sql
immutable
parallel safe
set search_path = public, pg_temp
as $$
    select case when n % 2 = 1 then lo::float8 else lo::float8 + 0.5::float8 * (hi::float8 - lo::float8) end
$$;
comment on function rpt_median(bigint, numeric, numeric) is
    'percentile_cont(0.5) of a set from its count and its two middle values (lo at rank floor((n-1)/2)).';
revoke all on function rpt_median(bigint, numeric, numeric) from public;

-- ---------------------------------------------------------------------------
-- The full rebuild: every level from the facts (the lowest) or the level below
-- ---------------------------------------------------------------------------
drop function rpt_recompute(boolean, uuid[], text[], uuid[], date[]);
drop function rpt_merge(regclass, text[], text[], text, text, uuid[], text[], uuid[], date[]);

-- Replaces a summary table's rows with fresh ones, writing only the rows that
-- differ: one hash full join of the fresh rows and the current ones finds the
-- rows gone, changed and new, which are then written by their ctid (0026 probed
-- the primary key once per fresh row, 400,000 probes for the member days of a
-- million facts, and anti-joined the two sets a second time).
create function rpt_replace(p_table regclass, p_keys text[], p_values text[], p_fresh text)
returns integer
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_written integer;
    v_first   text := quote_ident(p_keys[1]);  -- never null in a fresh row
begin
    execute format($sql$
        with fresh as (%1$s),
        current_rows as (select t.ctid as tid, t.* from %2$s t),
        diff as materialized (
            select c.tid, f.%3$s is null as gone, %4$s
              from fresh f full join current_rows c on %5$s
             where c.tid is null or f.%3$s is null or row(%6$s) is distinct from row(%7$s)),
        removed as (
            delete from %2$s t using diff d where d.gone and t.ctid = d.tid returning 1),
        changed as (
            update %2$s t set (%8$s) = row(%9$s) from diff d
             where d.tid is not null and not d.gone and t.ctid = d.tid returning 1),
        added as (
            insert into %2$s (%10$s) select %10$s from diff d where d.tid is null returning 1)
        select ((select count(*) from removed) + (select count(*) from changed)
                + (select count(*) from added))::integer
        $sql$,
        p_fresh, p_table, v_first,
        (select string_agg(format('f.%I', c), ', ') from unnest(p_keys || p_values) c),
        (select string_agg(format('f.%1$I = c.%1$I', k), ' and ') from unnest(p_keys) k),
        (select string_agg(format('c.%I', v), ', ') from unnest(p_values) v),
        (select string_agg(format('f.%I', v), ', ') from unnest(p_values) v),
        array_to_string(p_values, ', '),
        (select string_agg(format('d.%I', v), ', ') from unnest(p_values) v),
        array_to_string(p_keys || p_values, ', '))
    into v_written;
    return v_written;
end
$$;
comment on function rpt_replace(regclass, text[], text[], text) is
    'Internal (refresh_reporting_views(full => true)): replaces a summary table''s rows with fresh ones, writing only the rows that differ.';
revoke all on function rpt_replace(regclass, text[], text[], text) from public;

create function rpt_rebuild()
returns integer
language plpgsql
set search_path = public, pg_temp
set timezone = 'UTC'
-- Every fact is read: in table order, not through an index's order (the
-- planner would walk a million heap rows at random to save a sort).
set enable_indexscan = off
set enable_bitmapscan = off
set enable_indexonlyscan = off
as $$
declare
    v_n integer := 0;
begin
    -- One pass over the facts gives each member's day twice: its attempts that
    -- ended (rpt_user_day) and its scored ones (summed into rpt_leaderboard_month
    -- below instead of a second pass: the UTC day fixes the UTC month).
    drop table if exists rpt_member_days;
    create temp table rpt_member_days on commit drop as
        select f.org_id, f.user_id, f.date_key as day,
               count(*) filter (where f.ended_at is not null) as attempts,
               count(f.score) filter (where f.ended_at is not null) as scored,
               sum(f.score) filter (where f.ended_at is not null) as score_sum,
               sum(f.duration_seconds) filter (where f.ended_at is not null) as duration_sum,
               count(f.duration_seconds) filter (where f.ended_at is not null) as timed,
               max(f.ended_at) as last_activity,
               count(f.score) as lb_attempts,
               sum(f.score) as lb_score_sum,
               sum(f.duration_seconds) filter (where f.score is not null) as lb_duration,
               count(f.duration_seconds) filter (where f.score is not null) as lb_timed,
               sum(rpt_talk_percentage(f.talk_ms, f.listen_ms)::numeric)
                   filter (where f.score is not null) as lb_talk_sum,
               count(rpt_talk_percentage(f.talk_ms, f.listen_ms))
                   filter (where f.score is not null) as lb_talk_n
          from fact_scenario_attempts f
         where f.ended_at is not null or f.score is not null
         group by f.org_id, f.user_id, f.date_key;

    v_n := v_n + rpt_replace('rpt_user_day', array['org_id', 'user_id', 'day'],
        array['attempts', 'scored', 'score_sum', 'duration_sum', 'last_activity', 'timed'],
        'select org_id, user_id, day, attempts, scored, score_sum, duration_sum::bigint as duration_sum,
                last_activity, timed
           from rpt_member_days
          where attempts > 0');

    v_n := v_n + rpt_replace('rpt_org_day', array['org_id', 'day'],
        array['attempts', 'scored', 'score_sum', 'last_activity'],
        'select u.org_id, u.day, sum(u.attempts)::bigint as attempts, sum(u.scored)::bigint as scored,
                sum(u.score_sum) as score_sum, max(u.last_activity) as last_activity
           from rpt_user_day u
          group by u.org_id, u.day');

    v_n := v_n + rpt_replace('rpt_org_user', array['org_id', 'user_id'], array['days', 'last_day'],
        'select u.org_id, u.user_id, count(*) as days, max(u.day) as last_day
           from rpt_user_day u
          group by u.org_id, u.user_id');

    v_n := v_n + rpt_replace('rpt_org_overview', array['org_id'],
        array['active_users', 'total_attempts', 'scored', 'score_sum', 'avg_score', 'last_activity'],
        'select d.org_id, (select count(*) from rpt_org_user u where u.org_id = d.org_id) as active_users,
                d.total_attempts, d.scored, d.score_sum,
                d.score_sum / nullif(d.scored, 0)::numeric as avg_score, d.last_activity
           from (select d.org_id, sum(d.attempts)::bigint as total_attempts, sum(d.scored)::bigint as scored,
                        sum(d.score_sum) as score_sum, max(d.last_activity) as last_activity
                   from rpt_org_day d group by d.org_id) d
          where d.total_attempts > 0');

    v_n := v_n + rpt_replace('rpt_leaderboard_month', array['org_id', 'user_id', 'month'],
        array['avg_score', 'attempts', 'total_duration', 'avg_talk_percentage',
              'score_sum', 'timed', 'talk_sum', 'talk_n'],
        'select g.org_id, g.user_id, g.month, g.score_sum / g.attempts as avg_score, g.attempts,
                g.total_duration, (g.talk_sum / nullif(g.talk_n, 0))::float8 as avg_talk_percentage,
                g.score_sum, g.timed, g.talk_sum, g.talk_n
           from (select d.org_id, d.user_id,
                        date_trunc(''month'', d.day::timestamp) at time zone ''UTC'' as month,
                        sum(d.lb_attempts)::bigint as attempts, sum(d.lb_score_sum) as score_sum,
                        sum(d.lb_duration)::bigint as total_duration, sum(d.lb_timed)::bigint as timed,
                        sum(d.lb_talk_sum) as talk_sum, sum(d.lb_talk_n)::bigint as talk_n
                   from rpt_member_days d
                  where d.lb_attempts > 0
                  group by d.org_id, d.user_id, date_trunc(''month'', d.day::timestamp)) g');

    v_n := v_n + rpt_replace('rpt_scenario_insights', array['org_id', 'scenario_id'],
        array['attempt_count', 'avg_score', 'score_stddev', 'avg_duration', 'median_score', 'last_attempted',
              'score_sum', 'score_sq', 'duration_sum', 'timed', 'anchor_score', 'anchor_id'],
        'with sums as (
             select f.org_id, f.scenario_id, count(*) as n, sum(f.score) as score_sum,
                    sum(f.score * f.score) as score_sq, sum(f.duration_seconds) as duration_sum,
                    count(f.duration_seconds) as timed, max(f.ended_at) as last_attempted
               from fact_scenario_attempts f
              where f.score is not null and f.scenario_id is not null
              group by f.org_id, f.scenario_id),
         -- the anchor (rank floor((n-1)/2) in (score, attempt_id) order) and the
         -- score after it: one sort of the scored facts, compared column by column
         middle as (
             select r.org_id, r.scenario_id,
                    min(r.score) filter (where r.place = (r.n - 1) / 2) as anchor_score,
                    (array_agg(r.attempt_id) filter (where r.place = (r.n - 1) / 2))[1] as anchor_id,
                    min(r.score) filter (where r.place = (r.n - 1) / 2 + 1) as upper_score
               from (select f.org_id, f.scenario_id, f.score, f.attempt_id,
                            row_number() over (partition by f.org_id, f.scenario_id
                                               order by f.score, f.attempt_id) - 1 as place,
                            count(*) over (partition by f.org_id, f.scenario_id) as n
                       from fact_scenario_attempts f
                      where f.score is not null and f.scenario_id is not null) r
              where r.place between (r.n - 1) / 2 and (r.n - 1) / 2 + 1
              group by r.org_id, r.scenario_id)
         select s.org_id, s.scenario_id, s.n as attempt_count, s.score_sum / s.n as avg_score,
                rpt_stddev(s.n, s.score_sum, s.score_sq) as score_stddev,
                s.duration_sum::numeric / nullif(s.timed, 0) as avg_duration,
                rpt_median(s.n, m.anchor_score, m.upper_score) as median_score,
                s.last_attempted, s.score_sum, s.score_sq, s.duration_sum, s.timed,
                m.anchor_score, m.anchor_id
           from sums s join middle m on m.org_id = s.org_id and m.scenario_id = s.scenario_id');
    return v_n;
end
$$;
comment on function rpt_rebuild() is
    'Internal (refresh_reporting_views(full => true)): recomputes every summary row from the facts (or the level below), writing only the rows that differ; returns the rows written.';
revoke all on function rpt_rebuild() from public;

-- ---------------------------------------------------------------------------
-- The fold: consumes the log and adds it in; returns (changes, rows written)
-- ---------------------------------------------------------------------------
create function rpt_fold(out changes integer, out written integer)
language plpgsql
set search_path = public, pg_temp
set timezone = 'UTC'
-- Every statement reaches its rows by key; the planner cannot see how few
-- rows the log holds and would otherwise hash whole summary tables.
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
-- Those settings make the plans look costly; compiling them would take seconds.
set jit = off
as $$
declare
    v_changes rpt_changes[];
    v_n       integer;
begin
    written := 0;
    -- One statement, one snapshot: consume the log, fold the levels that may
    -- read facts (a member's day, a scenario's median and last attempt).
    with consumed as (
        delete from rpt_changes returning *
    ),
    day_delta as (
        select c.org_id, c.user_id, c.day,
               sum(c.sign) as attempts,
               coalesce(sum(c.sign) filter (where c.score is not null), 0) as scored,
               sum(c.sign * c.score) as score_sum,
               coalesce(sum(c.sign) filter (where c.duration_seconds is not null), 0) as timed,
               sum(c.sign * c.duration_seconds) as duration_sum,
               max(c.ended_at) filter (where c.sign > 0) as added_last,
               max(c.ended_at) filter (where c.sign < 0) as removed_last
          from consumed c
         where c.ended_at is not null
         group by c.org_id, c.user_id, c.day
    ),
    day_new as (
        select d.org_id, d.user_id, d.day,
               coalesce(t.attempts, 0) + d.attempts as attempts,
               coalesce(t.scored, 0) + d.scored as scored,
               case when coalesce(t.scored, 0) + d.scored > 0
                    then coalesce(t.score_sum, 0) + coalesce(d.score_sum, 0) end as score_sum,
               case when coalesce(t.timed, 0) + d.timed > 0
                    then coalesce(t.duration_sum, 0) + coalesce(d.duration_sum, 0) end as duration_sum,
               case when d.removed_last >= greatest(t.last_activity, d.added_last)
                    then (select max(f.ended_at) from fact_scenario_attempts f
                           where f.org_id = d.org_id and f.user_id = d.user_id and f.date_key = d.day
                             and f.ended_at is not null)
                    else greatest(t.last_activity, d.added_last) end as last_activity,
               coalesce(t.timed, 0) + d.timed as timed,
               t.org_id is null as created
          from day_delta d
          left join rpt_user_day t on t.org_id = d.org_id and t.user_id = d.user_id and t.day = d.day
    ),
    day_removed as (
        delete from rpt_user_day t using day_new n
         where n.attempts = 0 and t.org_id = n.org_id and t.user_id = n.user_id and t.day = n.day
        returning 1
    ),
    day_written as (
        insert into rpt_user_day as t (org_id, user_id, day, attempts, scored, score_sum, duration_sum,
                                       last_activity, timed)
        select org_id, user_id, day, attempts, scored, score_sum, duration_sum, last_activity, timed
          from day_new where attempts > 0
        on conflict (org_id, user_id, day) do update
           set (attempts, scored, score_sum, duration_sum, last_activity, timed)
             = row(excluded.attempts, excluded.scored, excluded.score_sum, excluded.duration_sum,
                   excluded.last_activity, excluded.timed)
        returning 1
    ),
    -- A member's days: a row created adds one, a row emptied removes one (most
    -- changes land on a day the member already had, and move nothing here).
    member_delta as (
        select n.org_id, n.user_id,
               sum(case when n.created and n.attempts > 0 then 1
                        when not n.created and n.attempts = 0 then -1 else 0 end) as days,
               max(n.day) filter (where n.created and n.attempts > 0) as added_day,
               max(n.day) filter (where not n.created and n.attempts = 0) as removed_day
          from day_new n
         group by n.org_id, n.user_id
        having bool_or((n.created and n.attempts > 0) or (not n.created and n.attempts = 0))
    ),
    member_new as (
        select d.org_id, d.user_id, coalesce(t.days, 0) + d.days as days,
               -- the latest day: what was added, unless the latest left; then the
               -- latest of the days that stay (this statement's removals excluded)
               case when d.removed_day >= t.last_day
                    then greatest(d.added_day,
                                  (select max(u.day) from rpt_user_day u
                                    where u.org_id = d.org_id and u.user_id = d.user_id
                                      and not exists (select 1 from day_new n
                                                       where n.org_id = u.org_id and n.user_id = u.user_id
                                                         and n.day = u.day and n.attempts = 0)))
                    else greatest(t.last_day, d.added_day) end as last_day
          from member_delta d
          left join rpt_org_user t on t.org_id = d.org_id and t.user_id = d.user_id
    ),
    member_removed as (
        delete from rpt_org_user t using member_new n
         where n.days <= 0 and t.org_id = n.org_id and t.user_id = n.user_id
        returning 1
    ),
    member_written as (
        insert into rpt_org_user as t (org_id, user_id, days, last_day)
        select org_id, user_id, days, last_day from member_new where days > 0
        on conflict (org_id, user_id) do update set (days, last_day) = row(excluded.days, excluded.last_day)
        returning 1
    ),
    scenario_delta as (
        select c.org_id, c.scenario_id,
               sum(c.sign) as n,
               sum(c.sign * c.score) as score_sum,
               sum(c.sign * c.score * c.score) as score_sq,
               coalesce(sum(c.sign) filter (where c.duration_seconds is not null), 0) as timed,
               sum(c.sign * c.duration_seconds) as duration_sum,
               max(c.ended_at) filter (where c.sign > 0) as added_last,
               max(c.ended_at) filter (where c.sign < 0) as removed_last,
               -- Where the stored anchor now stands: the changed rows below it,
               -- and whether the anchor row itself left or came back.
               coalesce(sum(c.sign) filter (where (c.score, c.attempt_id) < (t.anchor_score, t.anchor_id)), 0)
                   as below,
               coalesce(sum(c.sign) filter (where (c.score, c.attempt_id) = (t.anchor_score, t.anchor_id)), 0)
                   as at_anchor
          from consumed c
          left join rpt_scenario_insights t on t.org_id = c.org_id and t.scenario_id = c.scenario_id
         where c.score is not null and c.scenario_id is not null
         group by c.org_id, c.scenario_id
    ),
    scenario_moved as (
        select d.org_id, d.scenario_id, t.anchor_score, t.anchor_id,
               coalesce(t.attempt_count, 0) + d.n as n,
               -- rank of the anchor's place now (rows strictly below it), and 1 if it is still there
               (t.attempt_count - 1) / 2 + d.below as below,
               1 + d.at_anchor as present,
               case when coalesce(t.attempt_count, 0) + d.n > 0
                    then coalesce(t.score_sum, 0) + coalesce(d.score_sum, 0) end as score_sum,
               case when coalesce(t.attempt_count, 0) + d.n > 0
                    then coalesce(t.score_sq, 0) + coalesce(d.score_sq, 0) end as score_sq,
               coalesce(t.timed, 0) + d.timed as timed,
               case when coalesce(t.timed, 0) + d.timed > 0
                    then coalesce(t.duration_sum, 0) + coalesce(d.duration_sum, 0) end as duration_sum,
               case when d.removed_last >= greatest(t.last_attempted, d.added_last)
                    then (select max(f.ended_at) from fact_scenario_attempts f
                           where f.org_id = d.org_id and f.scenario_id = d.scenario_id and f.score is not null)
                    else greatest(t.last_attempted, d.added_last) end as last_attempted
          from scenario_delta d
          left join rpt_scenario_insights t on t.org_id = d.org_id and t.scenario_id = d.scenario_id
    ),
    -- materialized: the anchor is read three times below, and found once
    scenario_anchored as materialized (
        select m.*, a.anchor
          from scenario_moved m
          cross join lateral (
              select case
                  when m.n <= 0 then null
                  -- a new slice: the row at the middle rank
                  when m.anchor_id is null then (
                      select row(f.score, f.attempt_id)::rpt_score_key from fact_scenario_attempts f
                       where f.org_id = m.org_id and f.scenario_id = m.scenario_id and f.score is not null
                       order by f.score, f.attempt_id
                      offset (m.n - 1) / 2 limit 1)
                  when m.present = 1 and m.below = (m.n - 1) / 2
                      then row(m.anchor_score, m.anchor_id)::rpt_score_key
                  -- the middle is above the anchor's place: walk up from it
                  when (m.n - 1) / 2 >= m.below + m.present then (
                      select row(f.score, f.attempt_id)::rpt_score_key from fact_scenario_attempts f
                       where f.org_id = m.org_id and f.scenario_id = m.scenario_id and f.score is not null
                         and (f.score, f.attempt_id) > (m.anchor_score, m.anchor_id)
                       order by f.score, f.attempt_id
                      offset (m.n - 1) / 2 - m.below - m.present limit 1)
                  -- below it: walk down
                  else (
                      select row(f.score, f.attempt_id)::rpt_score_key from fact_scenario_attempts f
                       where f.org_id = m.org_id and f.scenario_id = m.scenario_id and f.score is not null
                         and (f.score, f.attempt_id) < (m.anchor_score, m.anchor_id)
                       order by f.score desc, f.attempt_id desc
                      offset m.below - 1 - (m.n - 1) / 2 limit 1)
              end as anchor) a
    ),
    scenario_new as (
        select s.org_id, s.scenario_id, s.n, s.score_sum, s.score_sq, s.timed, s.duration_sum,
               s.last_attempted, (s.anchor).score as anchor_score, (s.anchor).attempt_id as anchor_id,
               rpt_median(s.n, (s.anchor).score,
                          case when s.n % 2 = 0 then (
                              select f.score from fact_scenario_attempts f
                               where f.org_id = s.org_id and f.scenario_id = s.scenario_id
                                 and f.score is not null
                                 and (f.score, f.attempt_id) > ((s.anchor).score, (s.anchor).attempt_id)
                               order by f.score, f.attempt_id
                               limit 1) end) as median_score
          from scenario_anchored s
    ),
    scenario_removed as (
        delete from rpt_scenario_insights t using scenario_new n
         where n.n <= 0 and t.org_id = n.org_id and t.scenario_id = n.scenario_id
        returning 1
    ),
    scenario_written as (
        insert into rpt_scenario_insights as t (org_id, scenario_id, attempt_count, avg_score, score_stddev,
                                                avg_duration, median_score, last_attempted, score_sum,
                                                score_sq, duration_sum, timed, anchor_score, anchor_id)
        select org_id, scenario_id, n, score_sum / n, rpt_stddev(n, score_sum, score_sq),
               duration_sum::numeric / nullif(timed, 0), median_score, last_attempted, score_sum,
               score_sq, duration_sum, timed, anchor_score, anchor_id
          from scenario_new where n > 0
        on conflict (org_id, scenario_id) do update
           set (attempt_count, avg_score, score_stddev, avg_duration, median_score, last_attempted, score_sum,
                score_sq, duration_sum, timed, anchor_score, anchor_id)
             = row(excluded.attempt_count, excluded.avg_score, excluded.score_stddev, excluded.avg_duration,
                   excluded.median_score, excluded.last_attempted, excluded.score_sum, excluded.score_sq,
                   excluded.duration_sum, excluded.timed, excluded.anchor_score, excluded.anchor_id)
        returning 1
    )
    select (select array_agg(c::rpt_changes) from consumed c),
           ((select count(*) from day_removed) + (select count(*) from day_written)
            + (select count(*) from member_removed) + (select count(*) from member_written)
            + (select count(*) from scenario_removed) + (select count(*) from scenario_written))::integer
      into v_changes, v_n;
    changes := coalesce(cardinality(v_changes), 0);
    written := written + v_n;
    if changes = 0 then
        return;
    end if;

    -- An org's day: its members' days summed (the maximum re-read from them
    -- when the latest was removed).
    merge into rpt_org_day t
    using (
        select d.*,
               case when d.removed_last >= greatest(o.last_activity, d.added_last)
                    then (select max(u.last_activity) from rpt_user_day u
                           where u.org_id = d.org_id and u.day = d.day)
                    else greatest(o.last_activity, d.added_last) end as last_activity
          from (select c.org_id, c.day, sum(c.sign) as attempts,
                       coalesce(sum(c.sign) filter (where c.score is not null), 0) as scored,
                       sum(c.sign * c.score) as score_sum,
                       max(c.ended_at) filter (where c.sign > 0) as added_last,
                       max(c.ended_at) filter (where c.sign < 0) as removed_last
                  from unnest(v_changes) c
                 where c.ended_at is not null
                 group by c.org_id, c.day) d
          left join rpt_org_day o on o.org_id = d.org_id and o.day = d.day
    ) d on t.org_id = d.org_id and t.day = d.day
    when matched and t.attempts + d.attempts = 0 then delete
    when matched then update set
        attempts = t.attempts + d.attempts,
        scored = t.scored + d.scored,
        score_sum = case when t.scored + d.scored > 0 then coalesce(t.score_sum, 0) + coalesce(d.score_sum, 0) end,
        last_activity = d.last_activity
    when not matched and d.attempts > 0 then insert (org_id, day, attempts, scored, score_sum, last_activity)
        values (d.org_id, d.day, d.attempts, d.scored, case when d.scored > 0 then d.score_sum end, d.last_activity);
    get diagnostics v_n = row_count;
    written := written + v_n;

    -- The org: sums added, active users counted from rpt_org_user, the maximum
    -- re-read from the org's days when the latest was removed.
    merge into rpt_org_overview t
    using (
        select d.*, (select count(*) from rpt_org_user u where u.org_id = d.org_id) as active_users,
               case when d.removed_last >= greatest(o.last_activity, d.added_last)
                    then (select max(a.last_activity) from rpt_org_day a where a.org_id = d.org_id)
                    else greatest(o.last_activity, d.added_last) end as last_activity
          from (select c.org_id, coalesce(sum(c.sign), 0) as attempts,
                       coalesce(sum(c.sign) filter (where c.score is not null), 0) as scored,
                       sum(c.sign * c.score) as score_sum,
                       max(c.ended_at) filter (where c.sign > 0) as added_last,
                       max(c.ended_at) filter (where c.sign < 0) as removed_last
                  from unnest(v_changes) c
                 where c.ended_at is not null
                 group by c.org_id) d
          left join rpt_org_overview o on o.org_id = d.org_id
    ) d on t.org_id = d.org_id
    when matched and t.total_attempts + d.attempts = 0 then delete
    when matched then update set
        active_users = d.active_users,
        total_attempts = t.total_attempts + d.attempts,
        scored = t.scored + d.scored,
        score_sum = case when t.scored + d.scored > 0 then coalesce(t.score_sum, 0) + coalesce(d.score_sum, 0) end,
        avg_score = case when t.scored + d.scored > 0
                         then (coalesce(t.score_sum, 0) + coalesce(d.score_sum, 0)) / (t.scored + d.scored)::numeric end,
        last_activity = d.last_activity
    when not matched and d.attempts > 0 then insert (org_id, active_users, total_attempts, scored, score_sum,
                                                     avg_score, last_activity)
        values (d.org_id, d.active_users, d.attempts, d.scored, case when d.scored > 0 then d.score_sum end,
                case when d.scored > 0 then d.score_sum / d.scored::numeric end, d.last_activity);
    get diagnostics v_n = row_count;
    written := written + v_n;

    -- A member's month of scored attempts.
    merge into rpt_leaderboard_month t
    using (
        select c.org_id, c.user_id, date_trunc('month', c.started_at, 'UTC') as month,
               sum(c.sign) as attempts, sum(c.sign * c.score) as score_sum,
               coalesce(sum(c.sign) filter (where c.duration_seconds is not null), 0) as timed,
               sum(c.sign * c.duration_seconds) as duration_sum,
               coalesce(sum(c.sign) filter (where c.talk_pct is not null), 0) as talk_n,
               sum(c.sign * c.talk_pct::numeric) as talk_sum
          from unnest(v_changes) c
         where c.score is not null
         group by c.org_id, c.user_id, date_trunc('month', c.started_at, 'UTC')
    ) d on t.org_id = d.org_id and t.user_id = d.user_id and t.month = d.month
    when matched and t.attempts + d.attempts = 0 then delete
    when matched then update set
        attempts = t.attempts + d.attempts,
        score_sum = t.score_sum + d.score_sum,
        avg_score = (t.score_sum + d.score_sum) / (t.attempts + d.attempts),
        timed = t.timed + d.timed,
        total_duration = case when t.timed + d.timed > 0
                              then coalesce(t.total_duration, 0) + coalesce(d.duration_sum, 0) end,
        talk_n = t.talk_n + d.talk_n,
        talk_sum = case when t.talk_n + d.talk_n > 0 then coalesce(t.talk_sum, 0) + coalesce(d.talk_sum, 0) end,
        avg_talk_percentage = case when t.talk_n + d.talk_n > 0
                                   then ((coalesce(t.talk_sum, 0) + coalesce(d.talk_sum, 0))
                                         / (t.talk_n + d.talk_n))::float8 end
    when not matched and d.attempts > 0 then insert (org_id, user_id, month, avg_score, attempts, total_duration,
                                                     avg_talk_percentage, score_sum, timed, talk_sum, talk_n)
        values (d.org_id, d.user_id, d.month, d.score_sum / d.attempts, d.attempts,
                case when d.timed > 0 then d.duration_sum end,
                case when d.talk_n > 0 then (d.talk_sum / d.talk_n)::float8 end,
                d.score_sum, d.timed, case when d.talk_n > 0 then d.talk_sum end, d.talk_n);
    get diagnostics v_n = row_count;
    written := written + v_n;
end
$$;
comment on function rpt_fold() is
    'Internal (refresh_reporting_views): consumes the change log and adds it into the summaries; returns the rows consumed and written.';
revoke all on function rpt_fold() from public;

-- ---------------------------------------------------------------------------
-- refresh_reporting_views: the same contract as 0026's, over the fold
-- ---------------------------------------------------------------------------
create or replace function refresh_reporting_views(
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
            v_written := rpt_rebuild();
            v_changes := null;
        else
            select f.changes, f.written into v_changes, v_written from rpt_fold() f;
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

-- Every dashboard says when the summaries were last refreshed; a run every 15
-- minutes adds 35,000 rows a year, which max() read whole. The newest
-- succeeded run is now one index probe.
create index refresh_runs_succeeded_idx on refresh_runs (finished_at) where status = 'succeeded';
-- PL/pgSQL keeps the statement's plan per connection (a SQL function that is
-- not inlined, as a definer one is not, plans its body at every call).
create or replace function reports_refreshed_at()
returns timestamptz
language plpgsql
stable
security definer
set search_path = public, pg_temp
as $$
begin
    return (select max(r.finished_at) from refresh_runs r
             where r.status = 'succeeded' and (select practice_role()) is not null);
end
$$;

-- The stored figures start from what the facts say now (anchors included),
-- and the planner learns their sizes.
select refresh_reporting_views('manual', 'migration 0030', full => true);
analyze rpt_user_day, rpt_org_day, rpt_org_user, rpt_org_overview, rpt_leaderboard_month, rpt_scenario_insights;
