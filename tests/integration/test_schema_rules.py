"""Rules every object of the final schema keeps, checked over the catalog after
every migration has run (a migration-time check sees only what existed then):
tenant tables have row-level security enabled, forced and a policy for the
functions' role; every SECURITY DEFINER function pins its search_path; and no
function of ours can be executed by PUBLIC."""

from __future__ import annotations

import psycopg

from tests.conftest import MigratedDatabase

# Tables without an org that still hold nothing of a tenant's.
GLOBAL_TABLES = {"dim_time", "schema_migrations"}


def _rows(database: MigratedDatabase, sql: str) -> list[tuple]:
    with psycopg.connect(database.admin_url) as conn:
        return conn.execute(sql).fetchall()


def test_every_table_has_row_level_security_forced_with_a_policy_for_the_app(
    database: MigratedDatabase,
) -> None:
    tables = _rows(
        database,
        """
        select c.relname, c.relrowsecurity, c.relforcerowsecurity,
               exists (select 1 from pg_attribute a where a.attrelid = c.oid
                        and a.attname = 'org_id' and not a.attisdropped),
               exists (select 1 from pg_policy p where p.polrelid = c.oid
                        and 'practice_app'::regrole::oid = any (p.polroles))
          from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
           -- what the migrations made, not the probes other tests create
           and c.relowner = (select relowner from pg_class
                              where oid = 'public.schema_migrations'::regclass)
        """,
    )
    assert tables
    for name, enabled, forced, has_org, app_policy in tables:
        if name in GLOBAL_TABLES:
            assert not has_org, name
            continue
        assert enabled, f"{name}: row-level security not enabled"
        if has_org:
            assert forced, f"{name}: row-level security not forced"
            assert app_policy, f"{name}: no policy for practice_app"


def test_every_security_definer_function_pins_its_search_path(database: MigratedDatabase) -> None:
    definers = _rows(
        database,
        """
        select p.oid::regprocedure::text, coalesce(p.proconfig, '{}')
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace and p.prosecdef
        """,
    )
    assert definers  # resolve_principal, practice_enter, the definer triggers, …
    for name, config in definers:
        assert any(setting.startswith("search_path=") for setting in config), name


def test_no_function_of_ours_is_executable_by_public(database: MigratedDatabase) -> None:
    # A function created without a revoke is executable by PUBLIC (its ACL is
    # NULL, which means the default): each migration revokes what it creates.
    public = _rows(
        database,
        """
        select p.oid::regprocedure::text
          from pg_proc p
          left join pg_depend d on d.objid = p.oid and d.deptype = 'e'
         where p.pronamespace = 'public'::regnamespace and d.objid is null
           and (p.proacl is null
                or exists (select 1 from aclexplode(p.proacl) a
                            where a.grantee = 0 and a.privilege_type = 'EXECUTE'))
        """,
    )
    assert public == []


def test_the_app_role_cannot_bypass_row_level_security(database: MigratedDatabase) -> None:
    ((bypass, superuser),) = _rows(
        database,
        "select rolbypassrls, rolsuper from pg_roles where rolname = 'practice_app'",
    )
    assert (bypass, superuser) == (False, False)
