-- 0034: the full rebuild costs what the seed's plain REFRESH costs, from empty
-- summaries as over current ones.
--
-- Measured over 1,000,000 facts (bench reporting), 0030's rebuild took 1.10x the
-- plain REFRESH of the seed's three views over current summaries and 1.69x
-- over empty ones. Four costs, each removed here:
--   * every fact's talk percentage was cast from float8 to numeric (through
--     its text: about a microsecond a fact) at every rebuild; the facts now
--     store it, computed once when the fact is written (talk_pct, the same
--     numeric the rebuild summed, so no stored figure changes);
--   * the scenario insights sorted every scored fact for the medians; the
--     order is idx_fact_attempts_scenario's (0030), now read from the index;
--   * the member-days were aggregated by parallel workers whose partial
--     numeric sums cost more to merge than the split saved;
--   * rows written into an empty summary came in hash order, so every insert
--     touched another page of the key's index; they are now inserted in key
--     order;
--   * every row written into a summary checked its org's foreign key (400,000
--     checks from empty). The summaries are derived rows: a rebuild makes them
--     from the facts alone, and an org's deletion reaches them through its
--     facts (deleted with the org, their removal logged and folded: the
--     summaries lose the org's rows at the next refresh, and a full rebuild
--     never writes them). The keys' cascade did nothing the facts do not.
-- The fact table is rewritten once to fill the new column.

alter table fact_scenario_attempts
    add column talk_pct numeric generated always as (rpt_talk_percentage(talk_ms, listen_ms)::numeric) stored;
comment on column fact_scenario_attempts.talk_pct is
    'rpt_talk_percentage(talk_ms, listen_ms) as numeric (the float8''s 15 significant digits): what the leaderboard''s talk sums add.';

do $drop$
declare
    v_constraint record;
begin
    for v_constraint in
        select c.conrelid::regclass as tab, c.conname
          from pg_constraint c
         where c.contype = 'f' and c.confrelid = 'orgs'::regclass
           and c.conrelid = any(array['rpt_user_day', 'rpt_org_day', 'rpt_org_user', 'rpt_org_overview',
                                      'rpt_leaderboard_month', 'rpt_scenario_insights']::regclass[])
    loop
        execute format('alter table %s drop constraint %I', v_constraint.tab, v_constraint.conname);
    end loop;
end
$drop$;

create or replace function rpt_rebuild()
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
    v_n        integer := 0;
    v_parallel text := current_setting('max_parallel_workers_per_gather');
begin
    -- One pass over the facts gives each member's day twice: its attempts that
    -- ended (rpt_user_day) and its scored ones (summed into rpt_leaderboard_month
    -- below instead of a second pass: the UTC day fixes the UTC month).
    -- In one process: parallel workers would aggregate the member-days in parts
    -- whose numeric sums then cost more to merge than the split saved (4.0 s
    -- against 2.4 s over 1M facts on two cores).
    perform set_config('max_parallel_workers_per_gather', '0', true);
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
               sum(f.talk_pct) filter (where f.score is not null) as lb_talk_sum,
               count(f.talk_pct) filter (where f.score is not null) as lb_talk_n
          from fact_scenario_attempts f
         where f.ended_at is not null or f.score is not null
         group by f.org_id, f.user_id, f.date_key;
    perform set_config('max_parallel_workers_per_gather', v_parallel, true);

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

    -- The medians' order is the index's: read it there (the facts' pages are
    -- all-visible once vacuumed, so the heap is not touched) rather than sort
    -- every scored fact.
    perform set_config('enable_indexonlyscan', 'on', true), set_config('enable_sort', 'off', true);
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
         -- the anchor (rank floor((n-1)/2) in (score, attempt_id) order) and
         -- the score after it: walked to in idx_fact_attempts_scenario, read
         -- from the index alone, (n-1)/2 entries a slice; nothing is sorted
         middle as (
             select s.org_id, s.scenario_id, p.scores[1] as anchor_score, p.ids[1] as anchor_id,
                    p.scores[2] as upper_score
               from sums s
              cross join lateral (
                    select array_agg(r.score order by r.score, r.attempt_id) as scores,
                           array_agg(r.attempt_id order by r.score, r.attempt_id) as ids
                      from (select f.score, f.attempt_id from fact_scenario_attempts f
                             where f.org_id = s.org_id and f.scenario_id = s.scenario_id
                               and f.score is not null
                             order by f.score, f.attempt_id
                            offset (s.n - 1) / 2 limit 2) r) p)
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

create or replace function rpt_replace(p_table regclass, p_keys text[], p_values text[], p_fresh text)
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
            insert into %2$s (%10$s) select %10$s from diff d where d.tid is null
             order by %11$s returning 1)
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
        array_to_string(p_keys || p_values, ', '),
        (select string_agg(format('d.%I', k), ', ') from unnest(p_keys) k))
    into v_written;
    return v_written;
end
$$;
