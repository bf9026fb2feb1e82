-- 0022: the scenario catalog and a learner's engagement with it (save, rate,
-- private notes), and the coaches' authoring of their org's scenarios.
--
-- The counters of scenario_metadata (saves, ratings, uses) stay the
-- definer triggers' business (0003, 0004, 0005): a save, an unsave or a rating
-- here is one upsert of the caller's own user_scenario_progress row, and the
-- trigger on it moves the org's counters by exactly the change (none when
-- nothing changed), under the metadata row's lock, so concurrent callers
-- never lose an increment.
--
-- Trending: completions over the last 7 UTC days (today and the six before),
-- org-wide. scenario_completions_daily counts completed attempts per org,
-- scenario and UTC day of started_at (the fact table's date_key), kept by a
-- definer trigger on fact_scenario_attempts (one row per completed attempt,
-- written exactly once by the completion trigger), so the catalog reads at
-- most seven small rows per scenario instead of the org's facts, which the
-- member rule would moreover show each viewer only in part.
--
-- The catalog's order is a number per scenario (the sort's figure; for
-- newest, the creation instant in epoch seconds) and then the id, both
-- descending; a page resumes strictly after the last (value, id) it showed,
-- so a counter that moves while a client pages shifts no row into a page
-- twice by position (a row whose figure moved may move across the boundary,
-- as in any keyset list).

-- ---------------------------------------------------------------------------
-- Completions per org, scenario and UTC day
-- ---------------------------------------------------------------------------
create table scenario_completions_daily (
    org_id      uuid not null references orgs (id) on delete cascade,
    scenario_id uuid not null references scenarios (id) on delete cascade,
    day         date not null,
    completions integer not null default 0,
    primary key (org_id, scenario_id, day)
);
comment on table scenario_completions_daily is
    'Completed attempts per org, scenario and UTC day of started_at (trending). Written only by trigger_count_daily_completions() on fact_scenario_attempts.';

alter table scenario_completions_daily enable row level security;
alter table scenario_completions_daily force row level security;
select practice_policy('scenario_completions_daily', 'scenario_completions_daily_select', 'select',
                       practice_rule('org'));
select practice_owner_policy('scenario_completions_daily', 'all');
grant select on scenario_completions_daily to practice_app;

-- SECURITY DEFINER exception: maintains derived counters the app role may
-- only read, from the facts the completion trigger writes (as the owner).
create function trigger_count_daily_completions()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    insert into scenario_completions_daily as d (org_id, scenario_id, day, completions)
    select f.org_id, f.scenario_id, f.date_key, count(*)
      from new_facts f
     where f.scenario_id is not null
     group by f.org_id, f.scenario_id, f.date_key
     order by 1, 2, 3
    on conflict (org_id, scenario_id, day) do update
       set completions = d.completions + excluded.completions;
    return null;
end
$$;
comment on function trigger_count_daily_completions() is
    'SECURITY DEFINER statement trigger (AFTER INSERT on fact_scenario_attempts): completions per org, scenario and UTC day.';
revoke all on function trigger_count_daily_completions() from public;

create trigger count_daily_completions after insert on fact_scenario_attempts
    referencing new table as new_facts
    for each statement execute function trigger_count_daily_completions();

insert into scenario_completions_daily (org_id, scenario_id, day, completions)
select f.org_id, f.scenario_id, f.date_key, count(*)
  from fact_scenario_attempts f
 where f.scenario_id is not null
 group by f.org_id, f.scenario_id, f.date_key;

-- ---------------------------------------------------------------------------
-- The catalog
-- ---------------------------------------------------------------------------
create function scenario_sort_value(
    p_sort text, p_completions_7d bigint, p_saved integer, p_rating real, p_used integer,
    p_created_at timestamptz)
returns numeric
language sql
immutable
as $$
    select case p_sort
        when 'trending' then coalesce(p_completions_7d, 0)::numeric
        when 'most_saved' then coalesce(p_saved, 0)::numeric
        -- Unrated after every rated scenario.
        when 'top_rated' then coalesce(p_rating::numeric, -1)
        when 'most_used' then coalesce(p_used, 0)::numeric
        else extract(epoch from p_created_at)
    end
$$;
comment on function scenario_sort_value(text, bigint, integer, real, integer, timestamptz) is
    'The figure a catalog sort orders by (descending, then the id): trending, most_saved, top_rated, most_used, newest.';
revoke all on function scenario_sort_value(text, bigint, integer, real, integer, timestamptz) from public;
grant execute on function scenario_sort_value(text, bigint, integer, real, integer, timestamptz) to practice_app;

-- The scenarios the caller's org can use (its own and built-ins; active ones,
-- plus inactive ones of the org for its coaches when p_scenario_id names one),
-- each with the org's figures and the caller's own progress.
-- p_scenario_id given: that one scenario (active or not, as above), no paging.
create function scenario_catalog(
    p_org_id uuid, p_user_id text, p_sort text default 'newest',
    p_difficulty scenario_difficulty default null, p_category text default null,
    p_saved boolean default null, p_limit integer default 20,
    p_after_value numeric default null, p_after_id uuid default null,
    p_scenario_id uuid default null)
returns table (
    id uuid, org_id uuid, title text, description text, role text,
    difficulty scenario_difficulty, category text, instructions text, context text,
    expected_outcome text, learning_goal text, learning_objectives jsonb, persona jsonb,
    comfort_indicators jsonb, difficulty_rating integer, cefr_level text,
    cefr_recommendation text, created_by_user_id text, visibility scenario_visibility,
    is_active boolean, created_at timestamptz, updated_at timestamptz,
    amount_saved_count integer, total_times_used integer, total_attempts integer,
    average_rating real, ratings_count integer, completion_rate real,
    average_time_spent integer, completions_7d bigint,
    is_saved boolean, saved_at timestamptz, user_rating integer, user_notes text,
    times_completed integer, times_attempted integer, last_completed_at timestamptz,
    sort_value numeric)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
declare
    v_limit constant integer := least(greatest(coalesce(p_limit, 20), 1), 100);
    v_since constant date := (now() at time zone 'UTC')::date - 6;
begin
    if p_org_id is distinct from practice_org() or p_user_id is distinct from practice_user() then
        return;
    end if;
    return query
        select s.id, s.org_id, s.title, s.description, s.role, s.difficulty, s.category,
               s.instructions, s.context, s.expected_outcome, s.learning_goal,
               s.learning_objectives, s.persona, s.comfort_indicators, s.difficulty_rating,
               s.cefr_level, s.cefr_recommendation, s.created_by_user_id, s.visibility,
               s.is_active, s.created_at, s.updated_at,
               coalesce(m.amount_saved_count, 0), coalesce(m.total_times_used, 0),
               coalesce(m.total_attempts, 0), m.average_rating, coalesce(m.ratings_count, 0),
               m.completion_rate, m.average_time_spent, coalesce(t.completions, 0),
               coalesce(p.is_saved, false), p.saved_at, p.user_rating, p.user_notes,
               coalesce(p.times_completed, 0), coalesce(p.times_attempted, 0),
               p.last_completed_at, v.sort_value
          from scenarios s
          left join scenario_metadata m on m.org_id = p_org_id and m.scenario_id = s.id
          left join user_scenario_progress p
                 on p.org_id = p_org_id and p.user_id = p_user_id and p.scenario_id = s.id
          left join lateral (
              select sum(d.completions)::bigint as completions
                from scenario_completions_daily d
               where d.org_id = p_org_id and d.scenario_id = s.id and d.day >= v_since) t on true
         cross join lateral (
              select scenario_sort_value(p_sort, t.completions, m.amount_saved_count,
                                         m.average_rating, m.total_times_used, s.created_at)
                     as sort_value) v
         where (s.org_id is null or s.org_id = p_org_id)
           and (case when p_scenario_id is null then s.is_active
                     else s.id = p_scenario_id
                          and (s.is_active or (s.org_id = p_org_id
                                               and practice_role() in ('admin', 'manager')))
                end)
           and (p_difficulty is null or s.difficulty = p_difficulty)
           and (p_category is null or s.category = p_category)
           and (p_saved is null or coalesce(p.is_saved, false) = p_saved)
           and (p_after_id is null or (v.sort_value, s.id) < (p_after_value, p_after_id))
         order by v.sort_value desc, s.id desc
         limit v_limit;
end
$$;
comment on function scenario_catalog(uuid, text, text, scenario_difficulty, text, boolean, integer, numeric, uuid, uuid) is
    'The active scenarios the caller''s org can use with its figures (completions_7d = trending) and the caller''s progress, by a sort''s figure then id, descending, after the keyset (p_after_value, p_after_id); or one scenario (p_scenario_id).';

-- ---------------------------------------------------------------------------
-- Engagement: the caller's own row, one statement
-- ---------------------------------------------------------------------------
-- p_action: save, unsave, rate (p_rating 1..5), unrate, notes (p_notes; NULL
-- clears). Returns the caller's progress and the org's counters after the
-- change, or no row when the scenario is not an active one the org can use.
create function scenario_engage(
    p_org_id uuid, p_user_id text, p_scenario_id uuid, p_action text,
    p_rating integer default null, p_notes text default null)
returns table (
    scenario_id uuid, is_saved boolean, saved_at timestamptz, user_rating integer,
    user_notes text, times_completed integer, times_attempted integer,
    last_completed_at timestamptz, amount_saved_count integer, average_rating real,
    ratings_count integer)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
begin
    if p_org_id is distinct from practice_org() or p_user_id is distinct from practice_user()
       or not exists (select 1 from scenarios s
                       where s.id = p_scenario_id and s.is_active
                         and (s.org_id is null or s.org_id = p_org_id)) then
        return;
    end if;
    if p_action in ('save', 'rate', 'notes') then
        -- Only a real change reaches the counters' trigger (its WHEN clauses).
        insert into user_scenario_progress as p
               (org_id, user_id, scenario_id, is_saved, user_rating, user_notes)
        values (p_org_id, p_user_id, p_scenario_id, p_action = 'save',
                case when p_action = 'rate' then p_rating end,
                case when p_action = 'notes' then p_notes end)
        on conflict (org_id, user_id, scenario_id) do update
           set is_saved = case when p_action = 'save' then true else p.is_saved end,
               user_rating = case when p_action = 'rate' then p_rating else p.user_rating end,
               user_notes = case when p_action = 'notes' then p_notes else p.user_notes end
         where (p_action = 'save' and not p.is_saved)
            or (p_action = 'rate' and p.user_rating is distinct from p_rating)
            or (p_action = 'notes' and p.user_notes is distinct from p_notes);
    elsif p_action = 'unsave' then
        update user_scenario_progress p set is_saved = false
         where p.org_id = p_org_id and p.user_id = p_user_id
           and p.scenario_id = p_scenario_id and p.is_saved;
    elsif p_action = 'unrate' then
        update user_scenario_progress p set user_rating = null
         where p.org_id = p_org_id and p.user_id = p_user_id
           and p.scenario_id = p_scenario_id and p.user_rating is not null;
    else
        raise exception 'unknown engagement %', p_action using errcode = '22023';
    end if;
    return query
        select p_scenario_id, coalesce(p.is_saved, false), p.saved_at, p.user_rating,
               p.user_notes, coalesce(p.times_completed, 0), coalesce(p.times_attempted, 0),
               p.last_completed_at, coalesce(m.amount_saved_count, 0), m.average_rating,
               coalesce(m.ratings_count, 0)
          from (select 1) one
          left join user_scenario_progress p
                 on p.org_id = p_org_id and p.user_id = p_user_id and p.scenario_id = p_scenario_id
          left join scenario_metadata m
                 on m.org_id = p_org_id and m.scenario_id = p_scenario_id;
end
$$;
comment on function scenario_engage(uuid, text, uuid, text, integer, text) is
    'Save, unsave, rate, unrate or note an active scenario of the caller''s org (or a built-in) on the caller''s own progress row; the progress and the org''s counters after it, or no row when the scenario is not usable.';

-- ---------------------------------------------------------------------------
-- A member's progress across scenarios (the tracking visibility rule)
-- ---------------------------------------------------------------------------
create function user_scenario_progress_of(p_org_id uuid, p_user_id text, p_saved boolean default null)
returns table (
    scenario_id uuid, scenario_title text, is_saved boolean, saved_at timestamptz,
    user_rating integer, times_completed integer, times_attempted integer,
    last_attempt_at timestamptz, last_completed_at timestamptz, updated_at timestamptz)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
as $$
#variable_conflict use_column
begin
    perform practice_require_member(p_org_id, p_user_id);
    return query
        select p.scenario_id, s.title, p.is_saved, p.saved_at, p.user_rating,
               p.times_completed, p.times_attempted, p.last_attempt_at, p.last_completed_at,
               p.updated_at
          from user_scenario_progress p
          join scenarios s on s.id = p.scenario_id
         where p.org_id = p_org_id and p.user_id = p_user_id
           and (p_saved is null or p.is_saved = p_saved)
         order by p.updated_at desc, p.scenario_id desc;
end
$$;
comment on function user_scenario_progress_of(uuid, text, boolean) is
    'A member''s progress across the scenarios they saw (saved, rating, counts; never their private notes), most recently changed first. PNSEE when the member is not the caller''s to see.';

revoke all on function scenario_catalog(uuid, text, text, scenario_difficulty, text, boolean, integer, numeric, uuid, uuid) from public;
revoke all on function scenario_engage(uuid, text, uuid, text, integer, text) from public;
revoke all on function user_scenario_progress_of(uuid, text, boolean) from public;
grant execute on function scenario_catalog(uuid, text, text, scenario_difficulty, text, boolean, integer, numeric, uuid, uuid) to practice_app;
grant execute on function scenario_engage(uuid, text, uuid, text, integer, text) to practice_app;
grant execute on function user_scenario_progress_of(uuid, text, boolean) to practice_app;
