-- 0024: the webhooks. Vapi call reports and Clerk users, organizations and
-- memberships, received once and never lost.
--
-- webhook_events is the delivery log and the dedupe record at once: its unique
-- (source, event_id) is the provider's delivery key (Clerk: svix-id; Vapi: the
-- call id and message type, plus the message time for status updates). A row
-- is written, in its own transaction, before anything is processed; the
-- processing then claims it (row lock), does the work and records the outcome
-- in one transaction. A failed row keeps its error and attempt count and waits
-- for the retry schedule (next_attempt_at).
--
-- Ordering: Clerk delivers out of order and repeatedly. Each synced row keeps
-- the provider time of the state it holds (clerk_updated_ms, profile_updated_ms)
-- and an older event never overwrites a newer state. An event's time is the
-- object's updated_at; a delete's is when it happened (the envelope's
-- timestamp), so it is newer than every state it removes. Organization and user
-- deletes are soft and final (their ids are never reused); a membership
-- deleted and later recreated with a newer time is a member again (a rejoin).
--
-- Vapi: the attempt of a call is found by one narrow SECURITY DEFINER lookup
-- (the org is unknown until then); everything else runs as the system of the
-- attempt's org (SECURITY INVOKER, under the policies). The end-of-call report
-- ends the attempt through attempt_submit (0018), so the completion counters
-- and the fact row move once, whoever ends it first.

-- ---------------------------------------------------------------------------
-- Columns and indexes
-- ---------------------------------------------------------------------------
alter table webhook_events
    add column subject text,            -- what the event is about: a Clerk id, a Vapi call id
    add column occurred_ms bigint,      -- the provider's time of the event (epoch ms)
    add column reason text,             -- why an event was ignored
    add column next_attempt_at timestamptz;
comment on column webhook_events.subject is 'What the event is about: the Clerk object id, or the Vapi call id.';
comment on column webhook_events.occurred_ms is 'The provider''s time of the event, epoch milliseconds (ordering of Clerk events).';
comment on column webhook_events.reason is 'Why the event was ignored (outcome ignored).';
comment on column webhook_events.next_attempt_at is 'When the retry schedule may process a failed or stuck event again; NULL once it is done or gave up.';

create index webhook_events_retry_idx on webhook_events (next_attempt_at)
    where outcome in ('received', 'failed') and next_attempt_at is not null;
-- Deliveries that failed every retry: the backlog the retry job reports (and alarms on).
create index webhook_events_exhausted_idx on webhook_events (id)
    where outcome = 'failed' and next_attempt_at is null;
create index webhook_events_source_received_idx on webhook_events (source, received_at desc, id desc);

alter table orgs add column clerk_updated_ms bigint not null default 0;
comment on column orgs.clerk_updated_ms is 'Clerk''s updated_at (epoch ms) of the state this row holds; older events do not overwrite it.';

alter table org_members
    add column clerk_updated_ms bigint not null default 0,
    add column profile_updated_ms bigint not null default 0;
comment on column org_members.clerk_updated_ms is 'Clerk''s updated_at (epoch ms) of the membership state this row holds.';
comment on column org_members.profile_updated_ms is 'Clerk''s updated_at (epoch ms) of the user profile (name, email) this row holds; the maximum bigint once the user was deleted.';

alter table scenario_attempts
    add column call_status text,
    add column call_ended_reason text,
    add column recording_urls jsonb;
comment on column scenario_attempts.call_status is 'The Vapi call''s status, moved forward only (scheduled, queued, ringing, in-progress, forwarding, ended).';
comment on column scenario_attempts.call_ended_reason is 'Vapi''s endedReason for the call.';
comment on column scenario_attempts.recording_urls is 'Recording URLs of the call from the end-of-call report (mono, stereo, ...).';

create index idx_scenario_attempts_vapi_call_lookup on scenario_attempts (vapi_call_id)
    where vapi_call_id is not null;

-- ---------------------------------------------------------------------------
-- The attempt of a call (the one lookup across tenants)
-- ---------------------------------------------------------------------------
-- SECURITY DEFINER exception: the webhook does not know the org before the
-- attempt is found. It answers the system principal only, and only the
-- attempt's id and org: by the attempt id the call carries in its metadata,
-- then customer.externalId, then the stored vapi_call_id, in that order.
create function webhook_find_attempt(p_attempt_id uuid, p_external_id text, p_call_id text)
returns table (attempt_id uuid, org_id uuid)
language plpgsql
stable
security definer
set search_path = public, pg_temp
as $$
declare
    v_external uuid;
begin
    if (select practice_role()) is distinct from 'system' then
        return;
    end if;
    if p_attempt_id is not null then
        return query select a.id, a.org_id from scenario_attempts a where a.id = p_attempt_id;
        if found then return; end if;
    end if;
    if p_external_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        v_external := p_external_id::uuid;
        return query select a.id, a.org_id from scenario_attempts a where a.id = v_external;
        if found then return; end if;
    end if;
    if p_call_id is not null then
        -- Unique per org: a call id found in two orgs is ambiguous and answers nothing.
        return query
            select min(a.id::text)::uuid, min(a.org_id::text)::uuid
              from scenario_attempts a
             where a.vapi_call_id = p_call_id
            having count(*) = 1;
    end if;
end
$$;
comment on function webhook_find_attempt(uuid, text, text) is
    'SECURITY DEFINER (narrow): for the system principal only, the id and org of the attempt of a Vapi call (metadata attempt id, then customer.externalId, then vapi_call_id).';
revoke all on function webhook_find_attempt(uuid, text, text) from public;
grant execute on function webhook_find_attempt(uuid, text, text) to practice_app;

-- ---------------------------------------------------------------------------
-- Vapi
-- ---------------------------------------------------------------------------
create function vapi_call_status_rank(p_status text)
returns integer
language sql
immutable
set search_path = public, pg_temp
as $$
    select case p_status
        when 'scheduled' then 1 when 'queued' then 2 when 'ringing' then 3
        when 'in-progress' then 4 when 'forwarding' then 5 when 'ended' then 6
        else 0 end
$$;
comment on function vapi_call_status_rank(text) is 'The order of a Vapi call''s statuses (unknown: 0).';
revoke all on function vapi_call_status_rank(text) from public;
grant execute on function vapi_call_status_rank(text) to practice_app;

-- A status update moves the call's status forward only; the attempt's version
-- is untouched (it is the client's, for its drafts). Answers whether it moved.
create function vapi_apply_status(
    p_org_id uuid, p_attempt_id uuid, p_status text, p_ended_reason text)
returns boolean
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
begin
    update scenario_attempts a
       set call_status = p_status,
           call_ended_reason = coalesce(p_ended_reason, a.call_ended_reason)
     where a.id = p_attempt_id and a.org_id = p_org_id
       and vapi_call_status_rank(p_status) > vapi_call_status_rank(a.call_status);
    return found;
end
$$;
comment on function vapi_apply_status(uuid, uuid, text, text) is
    'Vapi status-update: moves the attempt''s call_status forward only (never back); true when it moved.';
revoke all on function vapi_apply_status(uuid, uuid, text, text) from public;
grant execute on function vapi_apply_status(uuid, uuid, text, text) to practice_app;

-- The end-of-call report. p_report: {call_id, ended_reason, ended_at,
-- duration_seconds, transcript_text, transcript_json, recording_url,
-- recording_urls, score, score_breakdown, feedback_text, kpis}, each optional.
-- In order, under the attempt's row lock:
--   1. the call's artifacts (no version change): call status ended, its ended
--      reason, recording URLs, the message log, the transcript where none is
--      stored (a transcript the trainee submitted stays), the call id;
--   2. an attempt still in progress ends through attempt_submit (its verdict,
--      its counters and fact row, once), at the call's end, with the call's
--      duration;
--   3. the analysis scores it through attempt_submit when nobody else has.
-- Answers the end verdict (ended, ended_before, not_found, ...) and the
-- scoring verdict (scored, or NULL when nothing was scored).
create function vapi_apply_report(
    p_org_id uuid, p_attempt_id uuid, p_caller text, p_report jsonb)
returns table (end_verdict text, score_verdict text)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
declare
    v_status attempt_status;
    v_scored_by text;
    v_call text := p_report ->> 'call_id';
    v_ended_at timestamptz := (p_report ->> 'ended_at')::timestamptz;
    v_end text;
    v_score text;
    v_scoring jsonb;
begin
    select a.status, a.scored_by into v_status, v_scored_by
      from scenario_attempts a
     where a.id = p_attempt_id and a.org_id = p_org_id
       for update;
    if not found then
        return query select 'not_found'::text, null::text;
        return;
    end if;

    -- A verified report binds the call to this attempt: another attempt of the
    -- org that claimed the call id (a client's word) lets go of it.
    if v_call is not null then
        update scenario_attempts a set vapi_call_id = null
         where a.org_id = p_org_id and a.vapi_call_id = v_call and a.id <> p_attempt_id;
    end if;
    update scenario_attempts a
       set call_status = 'ended',
           call_ended_reason = coalesce(p_report ->> 'ended_reason', a.call_ended_reason),
           vapi_call_id = coalesce(v_call, a.vapi_call_id),
           recording_urls = coalesce(p_report -> 'recording_urls', a.recording_urls),
           recording_url = coalesce(a.recording_url, p_report ->> 'recording_url'),
           transcript_json = coalesce(p_report -> 'transcript_json', a.transcript_json),
           transcript_text = case when a.status = 'in_progress' then a.transcript_text
                                  else coalesce(a.transcript_text, p_report ->> 'transcript_text') end,
           ended_at = case when a.status = 'in_progress'
                           then least(coalesce(v_ended_at, now()), now()) else a.ended_at end
     where a.id = p_attempt_id and a.org_id = p_org_id;

    if v_status = 'in_progress' then
        select s.verdict into v_end
          from attempt_submit(p_org_id, p_caller, jsonb_build_array(jsonb_strip_nulls(
                   jsonb_build_object('ord', 1, 'attempt_id', p_attempt_id, 'status', 'completed',
                                      'transcript_text', p_report ->> 'transcript_text')))) s;
        if v_end = 'ended' and p_report ? 'duration_seconds' then
            update scenario_attempts a
               set duration_seconds = greatest(0, (p_report ->> 'duration_seconds')::integer)
             where a.id = p_attempt_id and a.org_id = p_org_id;
        end if;
    else
        v_end := 'ended_before';
    end if;

    v_scoring := jsonb_strip_nulls(jsonb_build_object(
        'score', p_report -> 'score', 'score_breakdown', p_report -> 'score_breakdown',
        'feedback_text', p_report -> 'feedback_text', 'kpis', p_report -> 'kpis'));
    if v_scoring <> '{}'::jsonb and (v_scored_by is null or v_scored_by = p_caller) then
        select s.verdict into v_score
          from attempt_submit(p_org_id, p_caller, jsonb_build_array(
                   v_scoring || jsonb_build_object('ord', 1, 'attempt_id', p_attempt_id))) s;
    end if;
    return query select v_end, v_score;
end
$$;
comment on function vapi_apply_report(uuid, uuid, text, jsonb) is
    'Vapi end-of-call report: the call''s artifacts, the end of an attempt in progress and its score from the analysis, each through attempt_submit; answers both verdicts.';
revoke all on function vapi_apply_report(uuid, uuid, text, jsonb) from public;
grant execute on function vapi_apply_report(uuid, uuid, text, jsonb) to practice_app;

-- ---------------------------------------------------------------------------
-- Clerk
-- ---------------------------------------------------------------------------
-- Each answers what it did: applied, stale (an older state than the stored
-- one), deleted (the record is gone for good), or missing (nothing to apply to).

create function clerk_apply_organization(
    p_clerk_org_id text, p_name text, p_slug text, p_updated_ms bigint, p_deleted boolean)
returns text
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
declare
    v_row orgs;
begin
    select o.* into v_row from orgs o where o.clerk_org_id = p_clerk_org_id for update;
    if not found then
        insert into orgs (clerk_org_id, name, slug, clerk_updated_ms, deleted_at)
        values (p_clerk_org_id, coalesce(p_name, p_clerk_org_id), p_slug, p_updated_ms,
                case when p_deleted then now() end)
        on conflict (clerk_org_id) do nothing;
        if found then
            return case when p_deleted then 'deleted' else 'applied' end;
        end if;
        select o.* into v_row from orgs o where o.clerk_org_id = p_clerk_org_id for update;
    end if;
    if v_row.deleted_at is not null then
        return 'deleted';
    end if;
    if p_deleted then
        update orgs o set deleted_at = now(), clerk_updated_ms = greatest(o.clerk_updated_ms, p_updated_ms)
         where o.id = v_row.id;
        return 'deleted';
    end if;
    if p_updated_ms <= v_row.clerk_updated_ms then
        return 'stale';
    end if;
    update orgs o
       set name = coalesce(p_name, o.name), slug = p_slug, clerk_updated_ms = p_updated_ms
     where o.id = v_row.id;
    return 'applied';
end
$$;
comment on function clerk_apply_organization(text, text, text, bigint, boolean) is
    'Clerk organization.created|updated|deleted: newest state wins by Clerk''s updated_at; a delete deactivates the org for good (soft).';
revoke all on function clerk_apply_organization(text, text, text, bigint, boolean) from public;
grant execute on function clerk_apply_organization(text, text, text, bigint, boolean) to practice_app;

-- A membership. The org is created from the membership's own copy when its
-- organization event has not arrived yet (with time 0, so any organization
-- event overrides it). A membership deleted is inactive (deleted_at); a newer
-- created/updated (a rejoin) makes it a member again.
create function clerk_apply_membership(
    p_clerk_org_id text, p_org_name text, p_user_id text, p_role member_role,
    p_display_name text, p_email text, p_updated_ms bigint, p_deleted boolean)
returns text
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
declare
    v_org uuid;
    v_row org_members;
begin
    select o.id into v_org from orgs o where o.clerk_org_id = p_clerk_org_id;
    if v_org is null then
        insert into orgs (clerk_org_id, name, clerk_updated_ms)
        values (p_clerk_org_id, coalesce(p_org_name, p_clerk_org_id), 0)
        on conflict (clerk_org_id) do nothing;
        select o.id into v_org from orgs o where o.clerk_org_id = p_clerk_org_id;
    end if;
    select m.* into v_row from org_members m
     where m.org_id = v_org and m.user_id = p_user_id for update;
    if not found then
        insert into org_members (org_id, user_id, role, display_name, email,
                                 clerk_updated_ms, profile_updated_ms, deleted_at)
        values (v_org, p_user_id, p_role, p_display_name, p_email, p_updated_ms, p_updated_ms,
                case when p_deleted then now() end)
        on conflict (org_id, user_id) do nothing;
        if found then
            return case when p_deleted then 'deleted' else 'applied' end;
        end if;
        select m.* into v_row from org_members m
         where m.org_id = v_org and m.user_id = p_user_id for update;
    end if;
    -- A delete wins a tie: its time is when it happened, at or after the state it removes.
    if p_updated_ms < v_row.clerk_updated_ms
       or (p_updated_ms = v_row.clerk_updated_ms and not p_deleted) then
        return case when v_row.deleted_at is not null then 'deleted' else 'stale' end;
    end if;
    update org_members m
       set role = p_role,
           deleted_at = case when p_deleted then coalesce(m.deleted_at, now()) end,
           clerk_updated_ms = p_updated_ms,
           -- The profile the membership carries, unless the user's own events are newer.
           display_name = case when p_updated_ms > m.profile_updated_ms
                               then coalesce(p_display_name, m.display_name) else m.display_name end,
           email = case when p_updated_ms > m.profile_updated_ms
                        then coalesce(p_email, m.email) else m.email end,
           profile_updated_ms = greatest(m.profile_updated_ms, p_updated_ms)
     where m.org_id = v_org and m.user_id = p_user_id;
    return case when p_deleted then 'deleted' else 'applied' end;
end
$$;
comment on function clerk_apply_membership(text, text, text, member_role, text, text, bigint, boolean) is
    'Clerk organizationMembership.created|updated|deleted: role and activity of a member, newest by Clerk''s updated_at; a delete is soft.';
revoke all on function clerk_apply_membership(text, text, text, member_role, text, text, bigint, boolean) from public;
grant execute on function clerk_apply_membership(text, text, text, member_role, text, text, bigint, boolean) to practice_app;

-- A user's name and email on every membership of theirs (dim_users follows by
-- its trigger). A deleted user's personal data is erased for good (the time
-- becomes the maximum, so no event is ever newer); attempts and facts stay
-- under the user id. Answers applied, stale, deleted or missing (no membership).
create function clerk_apply_user(
    p_user_id text, p_display_name text, p_email text, p_updated_ms bigint, p_deleted boolean)
returns text
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
as $$
declare
    v_final constant bigint := 9223372036854775807;
    v_rows integer;
begin
    perform 1 from org_members m where m.user_id = p_user_id order by m.org_id for update;
    if not found then
        return 'missing';
    end if;
    if p_deleted then
        update org_members m
           set display_name = null, email = null, profile_updated_ms = v_final,
               clerk_updated_ms = v_final,
               deleted_at = coalesce(m.deleted_at, now())
         where m.user_id = p_user_id and m.profile_updated_ms < v_final;
        return 'deleted';
    end if;
    update org_members m
       set display_name = p_display_name, email = p_email, profile_updated_ms = p_updated_ms
     where m.user_id = p_user_id and m.profile_updated_ms < p_updated_ms;
    get diagnostics v_rows = row_count;
    if v_rows = 0 then
        return case when exists (select 1 from org_members m
                                  where m.user_id = p_user_id and m.profile_updated_ms = v_final)
                    then 'deleted' else 'stale' end;
    end if;
    return 'applied';
end
$$;
comment on function clerk_apply_user(text, text, text, bigint, boolean) is
    'Clerk user.created|updated|deleted: name and email on the user''s memberships, newest by Clerk''s updated_at; a delete erases them for good.';
revoke all on function clerk_apply_user(text, text, text, bigint, boolean) from public;
grant execute on function clerk_apply_user(text, text, text, bigint, boolean) to practice_app;
