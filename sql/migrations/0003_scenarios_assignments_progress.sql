-- 0003_scenarios_assignments_progress.sql
--
-- What: scenarios (the practice content, per org or built-in), dim_scenarios (its
-- reporting dimension, trigger-synced), assignments (manager -> trainee),
-- scenario_metadata (engagement counters, per org) and
-- user_scenario_progress (per-user save/rating/progress), plus the
-- trigger that keeps the save/rating counters in scenario_metadata.
--
-- Why: attempts (0004) reference scenarios and assignments; the counters are
-- derived data that only SECURITY DEFINER triggers write, so the app role can
-- read them but never forge them.
--
-- scenario_metadata is keyed (org_id, scenario_id) rather than the original's
-- scenario_id alone: built-in scenarios (org_id NULL) are shared by every org,
-- and one org must never see another org's usage counters.

-- ---------------------------------------------------------------------------
-- scenarios
-- ---------------------------------------------------------------------------
create table scenarios (
    id                  uuid primary key default gen_random_uuid(),
    org_id              uuid references orgs (id) on delete cascade,  -- NULL = built-in, visible to every org
    title               text not null,
    description         text,
    role                text,
    difficulty          scenario_difficulty not null default 'beginner',
    category            text,
    instructions        text,
    context             text,
    expected_outcome    text,
    learning_goal       text,
    learning_objectives jsonb,
    persona             jsonb,
    comfort_indicators  jsonb,
    difficulty_rating   integer,
    cefr_level          text,
    cefr_recommendation text,
    created_by_user_id  text,                                          -- Clerk user id; NULL for built-ins
    visibility          scenario_visibility not null default 'org',
    is_active           boolean not null default true,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now()
);
create index scenarios_org_active_idx on scenarios (org_id, is_active);
create index scenarios_builtin_idx on scenarios (is_active) where org_id is null;
comment on table scenarios is
    'Scenario content (seed 002). org_id NULL = built-in (read-only for the app, visible to all orgs). visibility private = creator, managers and admins of the owning org only.';

create trigger set_updated_at before update on scenarios
    for each row execute function practice_set_updated_at();

alter table scenarios enable row level security;
alter table scenarios force row level security;

create policy scenarios_select on scenarios for select to practice_app
    using (
        (select nullif(current_setting('app.org_id', true), '')::uuid) is not null
        and (
            org_id is null
            or (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                and (visibility <> 'private'
                     or created_by_user_id = (select nullif(current_setting('app.user_id', true), ''))
                     or (select nullif(current_setting('app.role', true), '')) in ('admin', 'manager')))
        )
    );
-- Admins and managers author their org's scenarios; built-ins (org_id NULL) are never writable by the app.
create policy scenarios_insert on scenarios for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (select nullif(current_setting('app.role', true), '')) in ('admin', 'manager')
    );
create policy scenarios_update on scenarios for update to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (select nullif(current_setting('app.role', true), '')) in ('admin', 'manager')
    )
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (select nullif(current_setting('app.role', true), '')) in ('admin', 'manager')
    );

-- Built-in scenarios (org_id NULL) are not writable by the app; they are
-- seeded by migrations or loaders running as the owner, which FORCE RLS would
-- otherwise refuse on a non-superuser owner (managed databases).
select practice_owner_policy('scenarios', 'all');

-- ---------------------------------------------------------------------------
-- dim_scenarios (the warehouse's scenario dimension), org_id NULL for built-ins
-- ---------------------------------------------------------------------------
create table dim_scenarios (
    scenario_id uuid primary key,
    org_id      uuid references orgs (id) on delete cascade,
    title       text,
    difficulty  text,
    category    text,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);
create index dim_scenarios_org_idx on dim_scenarios (org_id);
comment on table dim_scenarios is
    'Reporting dimension of scenarios. Written only by trigger_sync_dim_scenarios() on scenarios.';

create trigger set_updated_at before update on dim_scenarios
    for each row execute function practice_set_updated_at();

-- SECURITY DEFINER exception: writes the derived dim_scenarios row so that the
-- app role needs no write privilege on dimension tables.
create function trigger_sync_dim_scenarios()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    if tg_op = 'DELETE' or (tg_op = 'UPDATE' and old.id is distinct from new.id) then
        delete from dim_scenarios d where d.scenario_id = old.id;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        insert into dim_scenarios as d (scenario_id, org_id, title, difficulty, category, created_at)
        values (new.id, new.org_id, new.title, new.difficulty::text, new.category, new.created_at)
        on conflict (scenario_id) do update
           set org_id     = excluded.org_id,
               title      = excluded.title,
               difficulty = excluded.difficulty,
               category   = excluded.category,
               updated_at = now();
    end if;
    return null;
end
$$;
comment on function trigger_sync_dim_scenarios() is
    'SECURITY DEFINER trigger on scenarios: mirrors each scenario into dim_scenarios (delete on delete).';
revoke all on function trigger_sync_dim_scenarios() from public;

create trigger sync_dim_scenarios after insert or update or delete on scenarios
    for each row execute function trigger_sync_dim_scenarios();

alter table dim_scenarios enable row level security;
alter table dim_scenarios force row level security;

create policy dim_scenarios_select on dim_scenarios for select to practice_app
    using (
        (select nullif(current_setting('app.org_id', true), '')::uuid) is not null
        and (org_id is null
             or org_id = (select nullif(current_setting('app.org_id', true), '')::uuid))
    );
-- The BI role reads every org by design (never used by request handlers).
create policy dim_scenarios_reporting on dim_scenarios for select to practice_reporting
    using (true);

select practice_owner_policy('dim_scenarios', 'all');

-- ---------------------------------------------------------------------------
-- assignments
-- ---------------------------------------------------------------------------
create table assignments (
    id                  uuid primary key default gen_random_uuid(),
    org_id              uuid not null references orgs (id) on delete cascade,
    scenario_id         uuid not null references scenarios (id),
    assignee_user_id    text not null,
    assigned_by_user_id text,
    due_at              timestamptz,
    required            boolean not null default true,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    completed_at        timestamptz,   -- set by the completion trigger when an attempt of this assignment completes
    foreign key (org_id, assignee_user_id) references org_members (org_id, user_id) on delete cascade
);
create index assignments_org_assignee_due_idx on assignments (org_id, assignee_user_id, due_at);
create index assignments_org_scenario_idx on assignments (org_id, scenario_id);
comment on table assignments is
    'Scenario assigned to a trainee. completed_at is filled by trigger_populate_fact() when a linked attempt completes.';

create trigger set_updated_at before update on assignments
    for each row execute function practice_set_updated_at();

alter table assignments enable row level security;
alter table assignments force row level security;

-- Read: admins all in org; the assignee; whoever assigned it; a manager for their direct reports.
create policy assignments_select on assignments for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or assignee_user_id = (select nullif(current_setting('app.user_id', true), ''))
            or assigned_by_user_id = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and assignee_user_id in (
                    select m.user_id from public.org_members m
                     where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                       and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                       and m.deleted_at is null))
        )
    );
-- Write: admins for anyone in the org; managers for their direct reports (and
-- themselves); the scenario must be visible to the org (own or built-in).
create policy assignments_insert on assignments for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and (assignee_user_id = (select nullif(current_setting('app.user_id', true), ''))
                     or assignee_user_id in (
                        select m.user_id from public.org_members m
                         where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                           and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                           and m.deleted_at is null)))
        )
        and exists (select 1 from public.scenarios s where s.id = assignments.scenario_id)
    );
create policy assignments_update on assignments for update to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and (assignee_user_id = (select nullif(current_setting('app.user_id', true), ''))
                     or assignee_user_id in (
                        select m.user_id from public.org_members m
                         where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                           and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                           and m.deleted_at is null)))
        )
    )
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and (assignee_user_id = (select nullif(current_setting('app.user_id', true), ''))
                     or assignee_user_id in (
                        select m.user_id from public.org_members m
                         where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                           and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                           and m.deleted_at is null)))
        )
        and exists (select 1 from public.scenarios s where s.id = assignments.scenario_id)
    );
create policy assignments_delete on assignments for delete to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and (assignee_user_id = (select nullif(current_setting('app.user_id', true), ''))
                     or assignee_user_id in (
                        select m.user_id from public.org_members m
                         where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                           and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                           and m.deleted_at is null)))
        )
    );

-- The completion trigger (definer) stamps completed_at.
select practice_owner_policy('assignments', 'select');
select practice_owner_policy('assignments', 'update');

-- ---------------------------------------------------------------------------
-- scenario_metadata, per org
-- ---------------------------------------------------------------------------
create table scenario_metadata (
    org_id                   uuid not null references orgs (id) on delete cascade,
    scenario_id              uuid not null references scenarios (id) on delete cascade,
    amount_saved_count       integer not null default 0,  -- users of this org who saved it
    total_times_used         integer not null default 0,  -- completed attempts
    total_attempts           integer not null default 0,  -- attempts started
    average_rating           real,                        -- 1..5, NULL while unrated
    ratings_count            integer not null default 0,
    completion_rate          real,                        -- percent: total_times_used / total_attempts * 100
    average_time_spent       integer,                     -- seconds, mean duration of completed attempts
    -- Exact accumulators behind the two averages, so repeated incremental
    -- updates never drift (internal to the triggers; no API exposes them).
    ratings_sum              integer not null default 0,
    time_spent_total_seconds bigint not null default 0,
    time_spent_samples       integer not null default 0,
    created_at               timestamptz not null default now(),
    updated_at               timestamptz not null default now(),
    primary key (org_id, scenario_id)
);
create index scenario_metadata_scenario_idx on scenario_metadata (scenario_id);
comment on table scenario_metadata is
    'Per-org engagement counters of a scenario (seed 002). Written ONLY by SECURITY DEFINER triggers on scenario_attempts and user_scenario_progress; the app reads it.';

create trigger set_updated_at before update on scenario_metadata
    for each row execute function practice_set_updated_at();

alter table scenario_metadata enable row level security;
alter table scenario_metadata force row level security;

create policy scenario_metadata_select on scenario_metadata for select to practice_app
    using (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));

select practice_owner_policy('scenario_metadata', 'all');

-- ---------------------------------------------------------------------------
-- user_scenario_progress, per org and user
-- ---------------------------------------------------------------------------
create table user_scenario_progress (
    org_id            uuid not null,
    user_id           text not null,
    scenario_id       uuid not null references scenarios (id) on delete cascade,
    is_saved          boolean not null default false,
    saved_at          timestamptz,
    times_completed   integer not null default 0,   -- trigger-maintained
    times_attempted   integer not null default 0,   -- trigger-maintained
    last_attempt_at   timestamptz,                  -- trigger-maintained
    last_completed_at timestamptz,                  -- trigger-maintained
    user_rating       integer check (user_rating between 1 and 5),
    user_notes        text,
    created_at        timestamptz not null default now(),
    updated_at        timestamptz not null default now(),
    primary key (org_id, user_id, scenario_id),
    foreign key (org_id, user_id) references org_members (org_id, user_id) on delete cascade
);
create index user_progress_idx on user_scenario_progress (org_id, user_id);
create index scenario_progress_idx on user_scenario_progress (org_id, scenario_id);
create index saved_scenarios_idx on user_scenario_progress (org_id, user_id, is_saved);
comment on table user_scenario_progress is
    'Per-user save/rating/progress of a scenario (seed 002). is_saved, saved_at, user_rating, user_notes are written by the app (own rows; column grants); times_*/last_* by the attempt triggers.';

create trigger set_updated_at before update on user_scenario_progress
    for each row execute function practice_set_updated_at();

-- saved_at follows is_saved (stamped on save, cleared on unsave). INVOKER: edits NEW only.
create function trigger_progress_saved_at()
returns trigger
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
begin
    if new.is_saved then
        if tg_op = 'INSERT' or old.is_saved is distinct from true then
            new.saved_at := coalesce(new.saved_at, now());
        end if;
    else
        new.saved_at := null;
    end if;
    return new;
end
$$;
comment on function trigger_progress_saved_at() is
    'BEFORE trigger on user_scenario_progress: stamps saved_at when a scenario becomes saved, clears it when unsaved.';
revoke all on function trigger_progress_saved_at() from public;

create trigger progress_saved_at before insert or update of is_saved, saved_at on user_scenario_progress
    for each row execute function trigger_progress_saved_at();

-- SECURITY DEFINER exception: maintains the derived counters in
-- scenario_metadata (amount_saved_count, ratings_count/ratings_sum/average_rating)
-- from changes of is_saved and user_rating, so the app role needs no write
-- privilege on scenario_metadata.
create function trigger_progress_engagement()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    v_org        uuid;
    v_scenario   uuid;
    v_d_saved    integer := 0;
    v_d_count    integer := 0;
    v_d_sum      integer := 0;
begin
    if tg_op in ('INSERT', 'UPDATE') then
        v_org := new.org_id;
        v_scenario := new.scenario_id;
        v_d_saved := v_d_saved + new.is_saved::integer;
        v_d_count := v_d_count + (new.user_rating is not null)::integer;
        v_d_sum := v_d_sum + coalesce(new.user_rating, 0);
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        v_org := old.org_id;
        v_scenario := old.scenario_id;
        v_d_saved := v_d_saved - old.is_saved::integer;
        v_d_count := v_d_count - (old.user_rating is not null)::integer;
        v_d_sum := v_d_sum - coalesce(old.user_rating, 0);
    end if;
    if tg_op = 'UPDATE' and (old.org_id, old.scenario_id) is distinct from (new.org_id, new.scenario_id) then
        raise exception 'user_scenario_progress keys are immutable' using errcode = '0A000';
    end if;
    if v_d_saved = 0 and v_d_count = 0 and v_d_sum = 0 then
        return null;
    end if;

    if tg_op = 'DELETE' then
        -- Never insert on delete: the delete may be a cascade from the scenario
        -- or org itself, whose metadata row is being removed too.
        update scenario_metadata m
           set amount_saved_count = greatest(m.amount_saved_count + v_d_saved, 0),
               ratings_count      = greatest(m.ratings_count + v_d_count, 0),
               ratings_sum        = greatest(m.ratings_sum + v_d_sum, 0),
               average_rating     = case when m.ratings_count + v_d_count > 0
                                         then (m.ratings_sum + v_d_sum)::real / (m.ratings_count + v_d_count) end
         where m.org_id = v_org and m.scenario_id = v_scenario;
    else
        insert into scenario_metadata as m (org_id, scenario_id, amount_saved_count, ratings_count, ratings_sum, average_rating)
        values (v_org, v_scenario, greatest(v_d_saved, 0), greatest(v_d_count, 0), greatest(v_d_sum, 0),
                case when v_d_count > 0 then v_d_sum::real / v_d_count end)
        on conflict (org_id, scenario_id) do update
           set amount_saved_count = greatest(m.amount_saved_count + v_d_saved, 0),
               ratings_count      = greatest(m.ratings_count + v_d_count, 0),
               ratings_sum        = greatest(m.ratings_sum + v_d_sum, 0),
               average_rating     = case when m.ratings_count + v_d_count > 0
                                         then (m.ratings_sum + v_d_sum)::real / (m.ratings_count + v_d_count) end;
    end if;
    return null;
end
$$;
comment on function trigger_progress_engagement() is
    'SECURITY DEFINER trigger on user_scenario_progress: applies is_saved / user_rating changes to scenario_metadata (amount_saved_count +-1, ratings recomputed incrementally).';
revoke all on function trigger_progress_engagement() from public;

create trigger progress_engagement_insert after insert on user_scenario_progress
    for each row when (new.is_saved or new.user_rating is not null)
    execute function trigger_progress_engagement();
create trigger progress_engagement_update after update of is_saved, user_rating on user_scenario_progress
    for each row when (old.is_saved is distinct from new.is_saved
                       or old.user_rating is distinct from new.user_rating)
    execute function trigger_progress_engagement();
create trigger progress_engagement_delete after delete on user_scenario_progress
    for each row when (old.is_saved or old.user_rating is not null)
    execute function trigger_progress_engagement();

alter table user_scenario_progress enable row level security;
alter table user_scenario_progress force row level security;

create policy user_scenario_progress_select on user_scenario_progress for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or user_id = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and user_id in (
                    select m.user_id from public.org_members m
                     where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
                       and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                       and m.deleted_at is null))
        )
    );
-- Everyone writes only their own rows (save, rate, notes), for a scenario their org can see.
create policy user_scenario_progress_insert on user_scenario_progress for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
        and exists (select 1 from public.scenarios s where s.id = user_scenario_progress.scenario_id)
    );
create policy user_scenario_progress_update on user_scenario_progress for update to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    )
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    );

select practice_owner_policy('user_scenario_progress', 'all');
