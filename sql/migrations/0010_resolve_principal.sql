-- 0010: the one lookup that runs before a tenant context exists.
--
-- A request's token names a Clerk org and user; the RLS context needs our org
-- id. This function maps one to the other and nothing more, so it is SECURITY
-- DEFINER (the context it would need under RLS is what it computes).
--
-- It also provisions the membership just in time: the token is proof, signed
-- by Clerk, that the user belongs to the org, and Clerk's membership webhook
-- may arrive after the user's first request. A membership removed by the
-- webhook (deleted_at set) is not resurrected: the caller gets no principal.

create function resolve_principal(p_clerk_org_id text, p_user_id text, p_role text)
returns table (org_id uuid, member_role member_role)
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    v_org uuid;
begin
    select o.id into v_org
      from orgs o
     where o.clerk_org_id = p_clerk_org_id and o.deleted_at is null;
    if v_org is null then
        return;
    end if;
    if p_role in ('admin', 'manager', 'trainee') then
        insert into org_members (org_id, user_id, role)
        values (v_org, p_user_id, p_role::member_role)
        on conflict on constraint org_members_pkey do nothing;
    end if;
    return query
        select m.org_id, m.role
          from org_members m
         where m.org_id = v_org and m.user_id = p_user_id and m.deleted_at is null;
end
$$;

comment on function resolve_principal(text, text, text) is
    'Maps a Clerk org and user to the internal org and membership role; provisions the membership from a verified token.';

revoke all on function resolve_principal(text, text, text) from public;
grant execute on function resolve_principal(text, text, text) to practice_app;
