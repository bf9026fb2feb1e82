-- 0012_idempotency.sql
--
-- What: idempotency_keys, one row per (org, user, Idempotency-Key) holding a
-- hash of the request and the response it got, and idempotency_claim(), the
-- statement a keyed write runs first in its own transaction.
--
-- Why: a client that times out and retries a write must not start a second
-- attempt or apply a batch twice. Powertools' Idempotency utility persists to
-- DynamoDB or Redis, outside this database's transaction; here the key row is
-- inserted by the same transaction as the write it protects, so either both
-- commit or neither does (a failed write leaves no key, and the retry does the
-- work).
--
-- How a claim decides (idempotency_claim, run before the write, same transaction):
--   * another transaction holds the key's transaction-level advisory lock: that
--     request is still in flight -> SQLSTATE PR409 (the API answers 409 with
--     Retry-After). A key row inserted by the in-flight transaction would be
--     invisible until its commit, and a second insert would block on its unique
--     index entry instead of answering; the advisory lock is visible at once.
--     A 64-bit hash collision of two keys only yields a spurious, retryable 409.
--   * a live row with another request hash -> PR422 (same key, different request);
--   * a live row with the same hash -> PR200 (the caller replays the stored response);
--   * no live row -> the claim returns and holds the lock until commit; the
--     caller inserts the row with the response before committing.
-- The lock is released after the commit is visible, so a claim that gets the
-- lock always sees the row of the transaction that held it.
--
-- Expiry: rows live PRACTICE_IDEMPOTENCY_TTL_SECONDS (24 h by default). Purged
-- lazily: each claim deletes the caller's expired keys (the index below keeps
-- that cheap); an expired key is as good as absent.
--
-- Visibility (RLS, practice_app): the context org and the context user only.

create table idempotency_keys (
    org_id        uuid not null references orgs (id) on delete cascade,
    user_id       text not null,
    key           text not null check (length(key) between 1 and 255),
    request_hash  text not null,
    status_code   integer not null check (status_code between 100 and 599),
    headers       jsonb not null default '{}',
    body          text not null,
    created_at    timestamptz not null default now(),
    expires_at    timestamptz not null,
    primary key (org_id, user_id, key),
    foreign key (org_id, user_id) references org_members (org_id, user_id) on delete cascade
);
create index idempotency_keys_expiry_idx on idempotency_keys (org_id, user_id, expires_at);
comment on table idempotency_keys is
    'Idempotency-Key records: the request hash and the response of a keyed write, committed with the write. RLS: the context org and user only.';

alter table idempotency_keys enable row level security;
alter table idempotency_keys force row level security;

create policy idempotency_keys_select on idempotency_keys for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    );
create policy idempotency_keys_insert on idempotency_keys for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    );
create policy idempotency_keys_delete on idempotency_keys for delete to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and user_id = (select nullif(current_setting('app.user_id', true), ''))
    );

grant select, insert, delete on idempotency_keys to practice_app;

-- SECURITY INVOKER: it reads and deletes only what the caller's policies allow.
create function idempotency_claim(p_key text, p_request_hash text)
returns void
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
declare
    v_org  uuid := nullif(current_setting('app.org_id', true), '')::uuid;
    v_user text := nullif(current_setting('app.user_id', true), '');
    v_hash text;
begin
    if v_org is null or v_user is null then
        raise exception 'an idempotency key needs a caller' using errcode = '42501';
    end if;
    if not pg_try_advisory_xact_lock(hashtextextended(v_org::text || '/' || v_user || '/' || p_key, 0)) then
        raise exception 'a request with this Idempotency-Key is still in flight'
            using errcode = 'PR409';
    end if;
    delete from idempotency_keys
     where org_id = v_org and user_id = v_user and expires_at <= now();
    select k.request_hash into v_hash
      from idempotency_keys k
     where k.org_id = v_org and k.user_id = v_user and k.key = p_key;
    if v_hash is null then
        return;
    end if;
    if v_hash <> p_request_hash then
        raise exception 'this Idempotency-Key was used for a different request'
            using errcode = 'PR422';
    end if;
    raise exception 'this Idempotency-Key has a stored response' using errcode = 'PR200';
end
$$;
comment on function idempotency_claim(text, text) is
    'Run first by a keyed write: returns when the key is free (and holds it until commit); raises PR409 (in flight), PR422 (different request) or PR200 (replay the stored response).';
revoke all on function idempotency_claim(text, text) from public;
grant execute on function idempotency_claim(text, text) to practice_app;
