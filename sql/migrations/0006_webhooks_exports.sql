-- 0006_webhooks_exports.sql
--
-- What: webhook_events (idempotent ingest log of Vapi and Clerk deliveries)
-- and exports (CSV export jobs written to the exports bucket).
-- (The refresh log refresh_runs lives in 0005 next to refresh_reporting_views(),
-- whose return type it is.)
--
-- Why: webhooks are retried by their senders, so each delivery is recorded
-- once by (source, event_id) and its processing outcome kept; exports run
-- asynchronously and are polled by id.
--
-- 'system' context: the webhook handlers run with app.role = 'system' and do
-- not know the org before parsing the event, so system may insert, read and
-- update every webhook_events row. Exports are updated by the export worker
-- with app.role = 'system' and app.org_id set to the export's org.

-- ---------------------------------------------------------------------------
-- webhook_events
-- ---------------------------------------------------------------------------
create table webhook_events (
    id           bigint generated always as identity primary key,
    source       text not null check (source in ('vapi', 'clerk')),
    event_id     text not null,
    event_type   text not null,
    org_id       uuid,                          -- internal org id once known; no FK: the log must accept any delivery
    payload      jsonb not null,
    received_at  timestamptz not null default now(),
    processed_at timestamptz,
    outcome      text not null default 'received' check (outcome in ('received', 'processed', 'ignored', 'failed')),
    error        text,
    attempts     integer not null default 0,
    constraint webhook_events_source_event_id_key unique (source, event_id)
);
create index webhook_events_org_received_idx on webhook_events (org_id, received_at desc);
create index webhook_events_pending_idx on webhook_events (received_at)
    where processed_at is null;
comment on table webhook_events is
    'Every Vapi/Clerk webhook delivery, unique per (source, event_id) for idempotency, with its processing outcome.';

alter table webhook_events enable row level security;
alter table webhook_events force row level security;

create policy webhook_events_select on webhook_events for select to practice_app
    using (
        (select nullif(current_setting('app.role', true), '')) = 'system'
        or (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
            and (select nullif(current_setting('app.role', true), '')) = 'admin')
    );
create policy webhook_events_insert on webhook_events for insert to practice_app
    with check ((select nullif(current_setting('app.role', true), '')) = 'system');
create policy webhook_events_update on webhook_events for update to practice_app
    using ((select nullif(current_setting('app.role', true), '')) = 'system')
    with check ((select nullif(current_setting('app.role', true), '')) = 'system');

-- ---------------------------------------------------------------------------
-- exports
-- ---------------------------------------------------------------------------
create table exports (
    id           uuid primary key default gen_random_uuid(),
    org_id       uuid not null references orgs (id) on delete cascade,
    requested_by text not null,                 -- Clerk user id of the requester
    kind         text not null,                 -- e.g. 'attempts'
    filters      jsonb not null default '{}',
    status       text not null default 'pending' check (status in ('pending', 'running', 'succeeded', 'failed')),
    s3_key       text,
    row_count    integer,
    bytes        bigint,
    error        text,
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    completed_at timestamptz,
    expires_at   timestamptz
);
create index exports_org_created_idx on exports (org_id, created_at desc, id desc);
create index exports_org_requester_created_idx on exports (org_id, requested_by, created_at desc, id desc);
comment on table exports is
    'CSV export jobs (seed 001). The file lives in the exports bucket under s3_key; download URLs are minted on request.';

create trigger set_updated_at before update on exports
    for each row execute function practice_set_updated_at();

alter table exports enable row level security;
alter table exports force row level security;

-- Requester's own rows; admins all of their org; the system worker within the context org.
create policy exports_select on exports for select to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            requested_by = (select nullif(current_setting('app.user_id', true), ''))
            or (select nullif(current_setting('app.role', true), '')) in ('admin', 'system')
        )
    );
create policy exports_insert on exports for insert to practice_app
    with check (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and requested_by = (select nullif(current_setting('app.user_id', true), ''))
    );
create policy exports_update on exports for update to practice_app
    using (
        org_id = (select nullif(current_setting('app.org_id', true), '')::uuid)
        and (
            requested_by = (select nullif(current_setting('app.user_id', true), ''))
            or (select nullif(current_setting('app.role', true), '')) in ('admin', 'system')
        )
    )
    with check (org_id = (select nullif(current_setting('app.org_id', true), '')::uuid));
