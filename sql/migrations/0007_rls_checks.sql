-- 0007_rls_checks.sql
--
-- What: no schema change. Assertions that fail this migration (and so the
-- whole deploy) if the tenancy wall has a hole:
--   * every table in public with an org_id column has row-level security
--     ENABLED and FORCED and at least one policy for practice_app;
--   * every other table in public has RLS enabled, except the allow-listed
--     global calendar dim_time and the migration runner's ledger schema_migrations;
--   * every SECURITY DEFINER function in public pins its search_path;
--   * practice_app does not bypass RLS.
--
-- Why: policies are written next to their tables (0002..0006); this file is
-- the single place that proves none was forgotten. Later migrations that add
-- tables should re-run this block (copy it) at their end.

do $checks$
declare
    r record;
    v_problems text[] := '{}';
begin
    -- Tables holding tenant data: org_id column => RLS enabled + forced + app policy.
    for r in
        select c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity,
               exists (select 1 from pg_catalog.pg_attribute a
                        where a.attrelid = c.oid and a.attname = 'org_id'
                          and a.attnum > 0 and not a.attisdropped) as has_org,
               exists (select 1 from pg_catalog.pg_policy p
                        where p.polrelid = c.oid
                          and 'practice_app'::regrole::oid = any (p.polroles)) as has_app_policy
          from pg_catalog.pg_class c
         where c.relnamespace = 'public'::regnamespace
           and c.relkind in ('r', 'p')
    loop
        if r.has_org then
            if not r.relrowsecurity then
                v_problems := v_problems || format('%s: RLS not enabled', r.relname);
            end if;
            if not r.relforcerowsecurity then
                v_problems := v_problems || format('%s: RLS not forced', r.relname);
            end if;
            if not r.has_app_policy then
                v_problems := v_problems || format('%s: no policy for practice_app', r.relname);
            end if;
        elsif not r.relrowsecurity and r.relname not in ('dim_time', 'schema_migrations') then
            v_problems := v_problems || format('%s: RLS not enabled (not on the allow-list)', r.relname);
        end if;
    end loop;

    for r in
        select p.oid::regprocedure as fn
          from pg_catalog.pg_proc p
         where p.pronamespace = 'public'::regnamespace
           and p.prosecdef
           and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) as cfg(s)
                            where cfg.s like 'search_path=%')
    loop
        v_problems := v_problems || format('%s: SECURITY DEFINER without SET search_path', r.fn);
    end loop;

    if exists (select 1 from pg_catalog.pg_roles where rolname = 'practice_app' and (rolbypassrls or rolsuper)) then
        v_problems := v_problems || 'practice_app bypasses RLS'::text;
    end if;

    if cardinality(v_problems) > 0 then
        raise exception 'tenancy checks failed: %', array_to_string(v_problems, '; ');
    end if;
end
$checks$;
