-- 0011: the request's context, checked against the membership in the same round trip.
--
-- Every transaction of a function begins with practice_enter(): it sets the
-- row-level-security context (app.org_id, app.user_id, app.role) and the
-- statement timeout transaction-locally, after checking that the caller is
-- still a member of the org with at least the role the function assumed.
-- The functions cache who a caller is for a minute; this check makes a
-- demotion or a removal take effect on the caller's next request, inside the
-- round trip the request makes anyway.
--
-- SECURITY DEFINER: it reads the membership before any context exists (the
-- context is what it sets). It grants nothing the app role could not do
-- itself (set_config is open to every role); it only refuses.
--
-- Refusals raise SQLSTATE PR403, so the whole request rolls back: nothing is
-- written under a role the caller no longer has.

create function practice_enter(
    p_org_id uuid, p_user_id text, p_role text, p_statement_timeout text)
returns void
language plpgsql
volatile
security definer
set search_path = public, pg_temp
as $$
declare
    v_stored member_role;
begin
    perform set_config('statement_timeout', p_statement_timeout, true);
    if p_org_id is null then  -- no caller (health checks): no tenant rows at all
        perform set_config('app.org_id', '', true),
                set_config('app.user_id', '', true),
                set_config('app.role', '', true);
        return;
    end if;
    if p_role is distinct from 'system' then
        select m.role into v_stored
          from org_members m
          join orgs o on o.id = m.org_id and o.deleted_at is null
         where m.org_id = p_org_id and m.user_id = p_user_id and m.deleted_at is null;
        if v_stored is null then
            raise exception 'the caller is no longer a member of this organization'
                using errcode = 'PR403';
        end if;
        -- The enum is declared admin, manager, trainee: a greater value is less privilege.
        if v_stored > p_role::member_role then
            raise exception 'the caller''s role in this organization is now %', v_stored
                using errcode = 'PR403';
        end if;
    end if;
    perform set_config('app.org_id', p_org_id::text, true),
            set_config('app.user_id', p_user_id, true),
            set_config('app.role', p_role, true);
end
$$;
comment on function practice_enter(uuid, text, text, text) is
    'Begins a request: checks the membership and role, then sets the RLS context and statement timeout transaction-locally; raises PR403 when the caller lost the role.';
revoke all on function practice_enter(uuid, text, text, text) from public;
grant execute on function practice_enter(uuid, text, text, text) to practice_app;
