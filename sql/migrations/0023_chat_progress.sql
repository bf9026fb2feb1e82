-- 0023: a chat session's scenario progress, written from several devices
-- without losing one: chat_sessions.progress_version (the ETag), moved by
-- every write of the progress; a write naming another version is refused with
-- the current one (412 over HTTP), instead of silently overwriting it.
--
-- Only the session's owner writes (the policies, 0020: own); a manager reads
-- their team's sessions and an admin the org's (member). The timestamps follow
-- the scenario: scenario_started_at is set by the first write of a scenario
-- (and again when another scenario starts, which also clears
-- scenario_completed_at); scenario_completed_at by the first write that says
-- it completed.

alter table chat_sessions add column progress_version integer not null default 1
    check (progress_version >= 1);
comment on column chat_sessions.progress_version is
    'The version of the session''s scenario progress (its ETag): every write and clear of it adds one.';

-- p_action: put (p_progress, p_scenario_id, p_completed) or clear. verdict:
-- ok, not_found (not visible), forbidden (visible, not the caller's), stale
-- (p_expected_version given and not the current one); the row as it stands.
create function chat_progress_write(
    p_org_id uuid, p_user_id text, p_session_id uuid, p_action text,
    p_expected_version integer default null, p_progress jsonb default null,
    p_scenario_id text default null, p_completed boolean default false)
returns table (
    verdict text, scenario_id varchar, scenario_progress jsonb,
    scenario_started_at timestamptz, scenario_completed_at timestamptz,
    progress_version integer)
language plpgsql
volatile
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_row chat_sessions%rowtype;
begin
    select * into v_row from chat_sessions c
     where c.id = p_session_id and c.org_id = p_org_id
       for update;
    if not found then
        -- Unknown, another org's, or not the caller's to see (a manager's lock
        -- of a team member's row needs no update right: the member policy).
        select * into v_row from chat_sessions c
         where c.id = p_session_id and c.org_id = p_org_id;
        if not found then
            return query select 'not_found'::text, null::varchar, null::jsonb,
                                null::timestamptz, null::timestamptz, null::integer;
            return;
        end if;
    end if;
    if v_row.user_id is distinct from p_user_id then
        return query select 'forbidden'::text, null::varchar, null::jsonb,
                            null::timestamptz, null::timestamptz, null::integer;
        return;
    end if;
    if p_expected_version is not null and p_expected_version <> v_row.progress_version then
        return query select 'stale', v_row.scenario_id, v_row.scenario_progress,
                            v_row.scenario_started_at, v_row.scenario_completed_at,
                            v_row.progress_version;
        return;
    end if;
    if p_action = 'clear' and v_row.scenario_progress is null and v_row.scenario_id is null
       and v_row.scenario_started_at is null and v_row.scenario_completed_at is null then
        null;  -- already clear: nothing changes, not even the version
    elsif p_action = 'clear' then
        update chat_sessions c
           set scenario_progress = null, scenario_id = null, scenario_started_at = null,
               scenario_completed_at = null, progress_version = c.progress_version + 1
         where c.id = p_session_id
        returning * into v_row;
    elsif p_action = 'put' then
        update chat_sessions c
           set scenario_progress = p_progress,
               scenario_id = p_scenario_id,
               scenario_started_at = case
                   when c.scenario_id is distinct from p_scenario_id or c.scenario_started_at is null
                       then now() else c.scenario_started_at end,
               scenario_completed_at = case
                   when c.scenario_id is distinct from p_scenario_id
                       then case when p_completed then now() end
                   when p_completed then coalesce(c.scenario_completed_at, now())
                   else c.scenario_completed_at end,
               progress_version = c.progress_version + 1
         where c.id = p_session_id
        returning * into v_row;
    else
        raise exception 'unknown progress action %', p_action using errcode = '22023';
    end if;
    return query select 'ok'::text, v_row.scenario_id, v_row.scenario_progress,
                        v_row.scenario_started_at, v_row.scenario_completed_at,
                        v_row.progress_version;
end
$$;
comment on function chat_progress_write(uuid, text, uuid, text, integer, jsonb, text, boolean) is
    'Write (put) or clear a chat session''s scenario progress as its owner, on the expected progress_version when one is given: verdict ok, not_found, forbidden or stale, and the row as it stands.';
revoke all on function chat_progress_write(uuid, text, uuid, text, integer, jsonb, text, boolean) from public;
grant execute on function chat_progress_write(uuid, text, uuid, text, integer, jsonb, text, boolean) to practice_app;
