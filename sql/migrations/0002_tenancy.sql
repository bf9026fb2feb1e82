-- 0002_tenancy.sql
--
-- What: orgs, org_members (roles and the manager hierarchy), dim_users (the
-- reporting dimension kept in sync from org_members by a trigger), the
-- visibility helpers, and the row-level security of these tables.
--
-- Why: every other table is scoped by org and by user; the manager hierarchy
-- in org_members decides what a manager sees everywhere else. Policies sit
-- next to their tables so a table is never, even within a migration run,
-- without its RLS.
--
-- Policies: tenant policies are written TO practice_app (the app role);
-- practice_reporting gets its own read-everything policy on dim/fact tables;
-- the table owner gets narrow owner_maintenance_* policies only where
-- SECURITY DEFINER maintenance code needs them (see practice_owner_policy()).
-- 'system' context (Clerk webhook sync) may read and write orgs and
-- org_members of every org: the webhook learns the org from the event.

-- ---------------------------------------------------------------------------
-- orgs
-- ---------------------------------------------------------------------------
create table orgs (
    id           uuid primary key default gen_random_uuid(),
    clerk_org_id text not null unique,
    name         text not null,
    slug         text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    deleted_at   timestamptz
);
create unique index orgs_slug_key on orgs (slug) where slug is not null;
comment on table orgs is 'Tenants (Clerk organizations). RLS: the context org only; system context sees and writes all (Clerk sync).';

create trigger set_updated_at before update on orgs
    for each row execute function practice_set_updated_at();

alter table orgs enable row level security;
alter table orgs force row level security;

create policy orgs_select on orgs for select to practice_app
    using (
        id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        or (select nullif(current_setting('app.role', true), '')) = 'system'
    );
create policy orgs_system_insert on orgs for insert to practice_app
    with check ((select nullif(current_setting('app.role', true), '')) = 'system');
create policy orgs_system_update on orgs for update to practice_app
    using ((select nullif(current_setting('app.role', true), '')) = 'system')
    with check ((select nullif(current_setting('app.role', true), '')) = 'system');
create policy orgs_system_delete on orgs for delete to practice_app
    using ((select nullif(current_setting('app.role', true), '')) = 'system');

-- resolve_principal() (SECURITY DEFINER, 0010) maps a Clerk org id to our org
-- id before any context exists: the owner must be able to read orgs.
select practice_owner_policy('orgs', 'select');

-- ---------------------------------------------------------------------------
-- org_members
-- ---------------------------------------------------------------------------
create table org_members (
    org_id          uuid not null references orgs (id) on delete cascade,
    user_id         text not null,                       -- Clerk user id, e.g. 'user_abc'
    role            member_role not null default 'trainee',
    manager_user_id text,
    display_name    text,
    email           text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    deleted_at      timestamptz,
    primary key (org_id, user_id),
    constraint org_members_not_own_manager check (manager_user_id is distinct from user_id),
    -- Removing a manager leaves their reports without a manager (only that column is nulled).
    constraint org_members_manager_fkey foreign key (org_id, manager_user_id)
        references org_members (org_id, user_id) on delete set null (manager_user_id)
);
create index org_members_org_manager_idx on org_members (org_id, manager_user_id);
create index org_members_user_idx on org_members (user_id);
comment on table org_members is
    'Membership of a Clerk user in an org, with role and direct manager. Soft-deleted via deleted_at.';

create trigger set_updated_at before update on org_members
    for each row execute function practice_set_updated_at();

-- SECURITY DEFINER exception: a trainee must see their manager's row, but a
-- policy on org_members must not query org_members (infinite recursion). This
-- reads only the caller's own membership row (org and user from the context)
-- and returns its manager_user_id, which the caller can already see on their
-- own row, so it discloses nothing new. It runs as the owner, which reads
-- org_members through the owner_maintenance_select policy, never through the
-- tenant policy that calls this function, so there is no recursion.
create function practice_current_manager_user_id()
returns text
language sql
stable
security definer
set search_path = public, pg_temp
as $$
    select m.manager_user_id
      from org_members m
     where m.org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
       and m.user_id = (select nullif(current_setting('app.user_id', true), ''))
$$;
comment on function practice_current_manager_user_id() is
    'SECURITY DEFINER (narrow): manager_user_id of the caller''s own membership row in the context org; used by the org_members policy to avoid recursion.';
revoke all on function practice_current_manager_user_id() from public;

alter table org_members enable row level security;
alter table org_members force row level security;

-- admins: every member of their org; managers: own row + direct reports;
-- everyone: own row + own manager's row; system: all (Clerk sync).
create policy org_members_select on org_members for select to practice_app
    using (
        (select nullif(current_setting('app.role', true), '')) = 'system'
        or (
            org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
            and (
                (select nullif(current_setting('app.role', true), '')) = 'admin'
                or user_id = (select nullif(current_setting('app.user_id', true), ''))
                or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                    and manager_user_id = (select nullif(current_setting('app.user_id', true), '')))
                or user_id = (select practice_current_manager_user_id())
            )
        )
    );
create policy org_members_insert on org_members for insert to practice_app
    with check ((select nullif(current_setting('app.role', true), '')) = 'system');
-- Clerk has no manager concept, so besides the Clerk sync an org admin may
-- update members of their own org (set manager_user_id, display name).
create policy org_members_update on org_members for update to practice_app
    using (
        (select nullif(current_setting('app.role', true), '')) = 'system'
        or (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
            and (select nullif(current_setting('app.role', true), '')) = 'admin')
    )
    with check (
        (select nullif(current_setting('app.role', true), '')) = 'system'
        or (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
            and (select nullif(current_setting('app.role', true), '')) = 'admin')
    );
create policy org_members_delete on org_members for delete to practice_app
    using ((select nullif(current_setting('app.role', true), '')) = 'system');

-- Owner access for SECURITY DEFINER code: practice_current_manager_user_id()
-- reads the caller's membership; resolve_principal() (0010) reads and
-- provisions a membership from a verified token.
select practice_owner_policy('org_members', 'select');
select practice_owner_policy('org_members', 'insert');

-- Visibility rule shared by the tenant tables, as a function for code that
-- wants to ask "may the caller see this user's rows?". Policies inline the same
-- logic (an uncorrelated IN-subquery is evaluated once per statement, a
-- function call would run per row). SECURITY INVOKER: the org_members lookup
-- is itself subject to RLS, which for a manager shows exactly their reports.
create function practice_can_see_user(p_org uuid, p_user text)
returns boolean
language sql
stable
security invoker
set search_path = public, pg_temp
as $$
    select coalesce(
        p_org = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or p_user = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and exists (
                    select 1
                      from org_members m
                     where m.org_id = p_org
                       and m.user_id = p_user
                       and m.manager_user_id = (select nullif(current_setting('app.user_id', true), ''))
                       and m.deleted_at is null))
        ),
        false)
$$;
comment on function practice_can_see_user(uuid, text) is
    'True when the context may see rows of user p_user in org p_org: same org and (admin, self, or manager of a direct report).';
revoke all on function practice_can_see_user(uuid, text) from public;

-- ---------------------------------------------------------------------------
-- dim_users (the warehouse's user dimension), one row per membership: a Clerk user can be in several orgs
-- ---------------------------------------------------------------------------
create table dim_users (
    org_id          uuid not null references orgs (id) on delete cascade,
    user_id         text not null,
    name            text,
    email           text,
    role            member_role,
    manager_user_id text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    primary key (org_id, user_id)
);
create index dim_users_org_manager_idx on dim_users (org_id, manager_user_id);
comment on table dim_users is
    'Reporting dimension of users per org. Written only by trigger_sync_dim_users() on org_members.';

create trigger set_updated_at before update on dim_users
    for each row execute function practice_set_updated_at();

-- SECURITY DEFINER exception: writes the derived dim_users row so that the app
-- role needs no write privilege on dimension tables.
create function trigger_sync_dim_users()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        if tg_op = 'DELETE'
           or (old.org_id, old.user_id) is distinct from (new.org_id, new.user_id) then
            delete from dim_users d where d.org_id = old.org_id and d.user_id = old.user_id;
        end if;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        insert into dim_users as d (org_id, user_id, name, email, role, manager_user_id, created_at)
        values (new.org_id, new.user_id, new.display_name, new.email, new.role, new.manager_user_id, new.created_at)
        on conflict (org_id, user_id) do update
           set name            = excluded.name,
               email           = excluded.email,
               role            = excluded.role,
               manager_user_id = excluded.manager_user_id,
               updated_at      = now();
    end if;
    return null;
end
$$;
comment on function trigger_sync_dim_users() is
    'SECURITY DEFINER trigger on org_members: mirrors each membership into dim_users (delete on delete).';
revoke all on function trigger_sync_dim_users() from public;

create trigger sync_dim_users after insert or update or delete on org_members
    for each row execute function trigger_sync_dim_users();

alter table dim_users enable row level security;
alter table dim_users force row level security;

create policy dim_users_select on dim_users for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            (select nullif(current_setting('app.role', true), '')) = 'admin'
            or user_id = (select nullif(current_setting('app.user_id', true), ''))
            or ((select nullif(current_setting('app.role', true), '')) = 'manager'
                and manager_user_id = (select nullif(current_setting('app.user_id', true), '')))
        )
    );
-- practice_reporting is the BI role and reads every org by design
-- (it is never used by request handlers); hence USING (true).
create policy dim_users_reporting on dim_users for select to practice_reporting
    using (true);

select practice_owner_policy('dim_users', 'all');
