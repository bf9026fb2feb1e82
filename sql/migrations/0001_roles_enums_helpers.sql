-- 0001_roles_enums_helpers.sql
--
-- What: the two cluster-wide roles the application uses, the enum types every
-- later migration needs, and small helper functions that depend on no table.
--
-- Why: roles come first so later files can write policies TO them and GRANTs
-- on them. Roles are cluster-wide, not per database, so they are created
-- idempotently: the same migrations run against a second database in the same
-- cluster (tests, the local stack) must not fail because the role exists.
--
--   practice_app        NOLOGIN NOBYPASSRLS. The Lambda's login user (created
--                       elsewhere) is a member. Gets exactly the privileges
--                       the functions need (see 0009_grants.sql); row-level
--                       security always applies to it.
--   practice_reporting  NOLOGIN. The read-only BI role: SELECT on the
--                       fact_*, dim_* tables and the mv_* materialized views,
--                       nothing else.
--
-- Request context (set by the app per transaction with set_config(..., true))
-- is read by every policy EXACTLY as:
--   (select nullif(current_setting('app.org_id', true), '')::uuid)
--   (select nullif(current_setting('app.user_id', true), ''))
--   (select nullif(current_setting('app.role', true), ''))
-- The (select ...) wrapper makes each an initplan evaluated once per statement.
-- No context means every tenant policy is false: no rows.

-- ---------------------------------------------------------------------------
-- Roles (idempotent; tolerate a concurrent creator in another database)
-- ---------------------------------------------------------------------------
do $roles$
begin
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'practice_app') then
        begin
            create role practice_app nologin nobypassrls;
        exception when duplicate_object or unique_violation then
            null;  -- created concurrently by a migration of another database
        end;
    end if;
    -- Row-level security is the second tenancy wall: never let the app role bypass it.
    if exists (select 1 from pg_catalog.pg_roles where rolname = 'practice_app' and rolbypassrls) then
        alter role practice_app nobypassrls;
    end if;

    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'practice_reporting') then
        begin
            create role practice_reporting nologin nobypassrls;
        exception when duplicate_object or unique_violation then
            null;
        end;
    end if;
end
$roles$;

-- Role comments are cluster-wide; a migration owner without CREATEROLE (or,
-- on PostgreSQL 16+, without ADMIN on the role) may not set them: skip then.
do $comments$
begin
    comment on role practice_app is
        'Application role (NOLOGIN, NOBYPASSRLS). The Lambda login user is a member; every request sets app.org_id, app.user_id, app.role.';
    comment on role practice_reporting is
        'Read-only BI role (NOLOGIN): SELECT on fact_*, dim_* and mv_* only.';
exception when insufficient_privilege then
    raise notice 'role comments not set: %', sqlerrm;
end
$comments$;

-- PostgreSQL 15+ already withholds CREATE on schema public from PUBLIC; make it
-- explicit so an older or hand-made database ends up the same.
revoke create on schema public from public;

-- ---------------------------------------------------------------------------
-- Enums
-- ---------------------------------------------------------------------------
create type member_role as enum ('admin', 'manager', 'trainee');
create type scenario_difficulty as enum ('beginner', 'intermediate', 'advanced');
create type scenario_visibility as enum ('private', 'org', 'public');
create type attempt_status as enum ('in_progress', 'completed', 'abandoned', 'failed');

comment on type member_role is 'Role of a user inside one org (Clerk org role mapped to the product).';
comment on type attempt_status is 'Lifecycle of a scenario attempt.';

-- ---------------------------------------------------------------------------
-- Helper functions that depend on no table
-- (practice_can_see_user needs org_members, so it lives in 0002.)
-- ---------------------------------------------------------------------------

-- BEFORE UPDATE trigger: keep updated_at current unless the statement set it
-- explicitly. SECURITY INVOKER: it only edits NEW.
create function practice_set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
begin
    if new.updated_at is not distinct from old.updated_at then
        new.updated_at := now();
    end if;
    return new;
end
$$;
comment on function practice_set_updated_at() is
    'BEFORE UPDATE trigger: sets updated_at = now() unless the UPDATE set it explicitly.';

-- Safe integer extraction from JSON used by the completion trigger: a malformed
-- KPI (string, fraction, out of range) must never make completing an attempt fail.
create function practice_jsonb_int(p_doc jsonb, p_key text)
returns integer
language sql
immutable
parallel safe
security invoker
set search_path = public, pg_temp
as $$
    select case
        when v ~ '^\s*-?[0-9]{1,12}(\.[0-9]+)?\s*$'
             and round(v::numeric) between -2147483648 and 2147483647
        then round(v::numeric)::integer
    end
    from (
        select case when jsonb_typeof(p_doc -> p_key) in ('number', 'string')
                    then p_doc ->> p_key end as v
    ) s
$$;
comment on function practice_jsonb_int(jsonb, text) is
    'Returns p_doc->>p_key as an integer (rounded) or NULL when missing, non-numeric or out of range; never raises.';

-- Migration-time helper. Tables holding tenant data have RLS FORCED, which also
-- binds their owner. The few SECURITY DEFINER functions (which run as the owner)
-- need to read/write derived rows across orgs, and REFRESH MATERIALIZED VIEW
-- reads the fact table as the owner. On a real superuser that is moot (superusers
-- always bypass RLS), but on a managed database (RDS/Aurora master user) the
-- owner is not a superuser, so each such table gets an explicit, narrow
-- "owner_maintenance_<command>" policy TO the table's owner. Tenant policies are
-- written TO practice_app and never apply to the owner.
-- SECURITY INVOKER: only the owner can create policies on its tables anyway.
create function practice_owner_policy(p_table regclass, p_command text)
returns void
language plpgsql
security invoker
set search_path = public, pg_temp
as $$
declare
    v_cmd   text := lower(p_command);
    v_owner name;
    v_name  text;
    v_exprs text;
begin
    if v_cmd not in ('all', 'select', 'insert', 'update', 'delete') then
        raise exception 'practice_owner_policy: unknown command %', p_command using errcode = '22023';
    end if;
    select r.rolname into strict v_owner
      from pg_catalog.pg_class c
      join pg_catalog.pg_roles r on r.oid = c.relowner
     where c.oid = p_table;
    v_name := 'owner_maintenance_' || v_cmd;
    v_exprs := case v_cmd
        when 'insert' then 'with check (true)'
        when 'select' then 'using (true)'
        when 'delete' then 'using (true)'
        else 'using (true) with check (true)'
    end;
    if exists (select 1 from pg_catalog.pg_policy pol where pol.polrelid = p_table and pol.polname = v_name) then
        execute format('drop policy %I on %s', v_name, p_table);
    end if;
    execute format('create policy %I on %s as permissive for %s to %I %s',
                   v_name, p_table, v_cmd, v_owner, v_exprs);
    execute format('comment on policy %I on %s is %L', v_name, p_table,
                   'Lets SECURITY DEFINER maintenance code (running as the table owner) work under FORCE ROW LEVEL SECURITY; see practice_owner_policy().');
end
$$;
comment on function practice_owner_policy(regclass, text) is
    'Migration helper: creates policy owner_maintenance_<command> TO the table owner so SECURITY DEFINER maintenance works under FORCE RLS.';

revoke all on function practice_set_updated_at() from public;
revoke all on function practice_jsonb_int(jsonb, text) from public;
revoke all on function practice_owner_policy(regclass, text) from public;
