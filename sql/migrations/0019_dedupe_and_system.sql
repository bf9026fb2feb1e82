-- 0019: one dedupe mechanism for any caller, and a system principal.
--
-- dedupe_records replaces idempotency_keys: "this was already done", keyed by
-- scope and key, written in the same transaction as the work it guards.
--   scope 'http:<org>:<user>'  a member's Idempotency-Key (the reply is kept,
--                              so a retry gets the first answer);
--   scope 'webhook:<source>'   a provider's delivery id;
--   scope 'queue:<name>'       a queue message's id;
--   any other scope a job of the system names.
-- A member's records carry their org and user (RLS: their own, and gone with
-- their membership); the system's carry no user and are the system's alone.
--
-- The system principal (app.role = 'system') is work no member asked for: a
-- schedule, a webhook, a queue consumer. practice_enter() sets its context
-- without a membership check; with no org, it sees no tenant row, and its
-- rights are only those the policies give the role by name (here: its own
-- dedupe records, and sweeping anyone's expired ones).
--
-- The refusals a statement raises are named for what happened:
--   PMEMB  the caller is no longer a member, or no longer has the role;
--   PDBSY  a request with this key is still running;
--   PDDIF  this key was used for another request;
--   PDONE  this key has been handled: read the stored reply.

-- ---------------------------------------------------------------------------
-- dedupe_records
-- ---------------------------------------------------------------------------
create table dedupe_records (
    scope        text not null check (length(scope) between 1 and 200),
    key          text not null check (length(key) between 1 and 255),
    org_id       uuid references orgs (id) on delete cascade,
    user_id      text,
    request_hash text not null,
    reply        jsonb,
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    primary key (scope, key),
    foreign key (org_id, user_id) references org_members (org_id, user_id) on delete cascade
);
create index dedupe_records_expiry_idx on dedupe_records (expires_at);
comment on table dedupe_records is
    'What was already done, by scope and key (Idempotency-Key, delivery and message ids), committed with the work; reply is what a retry gets back.';

alter table dedupe_records enable row level security;
alter table dedupe_records force row level security;

create policy dedupe_records_own on dedupe_records for all to practice_app
    using (
        (user_id = (select practice_user()) and org_id = (select practice_org()))
        or (user_id is null and (select practice_role()) = 'system')
    )
    with check (
        (user_id = (select practice_user()) and org_id = (select practice_org()))
        or (user_id is null and (select practice_role()) = 'system')
    );
-- The sweep of expired records runs as the system, across every org (a DELETE
-- reads the rows it deletes, so it needs seeing them as well).
create policy dedupe_records_sweep_select on dedupe_records for select to practice_app
    using ((select practice_role()) = 'system' and expires_at <= now());
create policy dedupe_records_sweep on dedupe_records for delete to practice_app
    using ((select practice_role()) = 'system' and expires_at <= now());

grant select, insert, delete on dedupe_records to practice_app;

insert into dedupe_records (scope, key, org_id, user_id, request_hash, reply, created_at, expires_at)
select 'http:' || k.org_id || ':' || k.user_id, k.key, k.org_id, k.user_id, k.request_hash,
       jsonb_build_object('status_code', k.status_code, 'headers', k.headers, 'body', k.body),
       k.created_at, k.expires_at
  from idempotency_keys k
 where k.expires_at > now();

drop function idempotency_claim(text, text);
drop table idempotency_keys;

-- Run first by work that must happen once: returns when the key is free (and
-- holds it until the transaction ends), else raises PDBSY, PDDIF or PDONE.
-- Another transaction holding the key's advisory lock is still running: a row
-- it inserted would be invisible until its commit, and a second insert would
-- wait on the unique index rather than answer. The lock is released after the
-- commit is visible, so a claim that gets it sees the row of the one before.
create function dedupe_claim(p_scope text, p_key text, p_request_hash text)
returns void
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
declare
    v_hash text;
begin
    if practice_role() is null then
        raise exception 'a dedupe record needs a caller' using errcode = '42501';
    end if;
    if not pg_try_advisory_xact_lock(hashtextextended(p_scope || '/' || p_key, 0)) then
        raise exception 'work with this key is still running' using errcode = 'PDBSY';
    end if;
    delete from dedupe_records d
     where d.scope = p_scope and d.key = p_key and d.expires_at <= now();
    select d.request_hash into v_hash
      from dedupe_records d
     where d.scope = p_scope and d.key = p_key;
    if v_hash is null then
        return;
    end if;
    if v_hash <> p_request_hash then
        raise exception 'this key was used for another request' using errcode = 'PDDIF';
    end if;
    raise exception 'this key has been handled' using errcode = 'PDONE';
end
$$;
comment on function dedupe_claim(text, text, text) is
    'Run first by work that must happen once: returns when the key is free (holding it until commit); raises PDBSY (running), PDDIF (another request) or PDONE (handled: read the reply).';
revoke all on function dedupe_claim(text, text, text) from public;
grant execute on function dedupe_claim(text, text, text) to practice_app;

-- ---------------------------------------------------------------------------
-- practice_enter: the system principal, and PMEMB
-- ---------------------------------------------------------------------------
create or replace function practice_enter(
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
    if p_role = 'system' then
        -- Work no member asked for: no membership to check; an org only when
        -- the work is one org's (then RLS shows that org's rows, as to its admin).
        perform set_config('app.org_id', coalesce(p_org_id::text, ''), true),
                set_config('app.user_id', p_user_id, true),
                set_config('app.role', 'system', true);
        return;
    end if;
    if p_org_id is null then  -- no caller (health checks): no tenant rows at all
        perform set_config('app.org_id', '', true),
                set_config('app.user_id', '', true),
                set_config('app.role', '', true);
        return;
    end if;
    select m.role into v_stored
      from org_members m
      join orgs o on o.id = m.org_id and o.deleted_at is null
     where m.org_id = p_org_id and m.user_id = p_user_id and m.deleted_at is null;
    if v_stored is null then
        raise exception 'the caller is no longer a member of this organization'
            using errcode = 'PMEMB';
    end if;
    -- The role order has its home in the enum: admin, manager, trainee.
    if v_stored > p_role::member_role then
        raise exception 'the caller''s role in this organization is now %', v_stored
            using errcode = 'PMEMB';
    end if;
    perform set_config('app.org_id', p_org_id::text, true),
            set_config('app.user_id', p_user_id, true),
            set_config('app.role', p_role, true);
end
$$;
