-- 0020: every policy of practice_app written once more, from a few shapes, with
-- the request context read through practice_org(), practice_user() and
-- practice_role() (0018) instead of a pasted current_setting(...) cast each.
--
-- The shapes (practice_rule), for a table and the column naming whose row it is:
--   org     the caller's org;
--   own     the caller's org, and the caller's own row;
--   member  the caller's org, and an admin, the row's own member, or the
--           manager of its member's team;
--   coach   the caller's org, and an admin, or a manager for themselves and
--           their team (who may direct a member's work);
--   system  the system principal (webhooks, schedules, queues).
-- Each is an uncorrelated condition the planner evaluates once per statement
-- (an initplan), not a function call per row. What a policy says is unchanged
-- (tests/integration/test_rls.py checks every table, operation and caller),
-- except attempt_activity: a row is visible as its attempt is, now read from
-- its owner_user_id (0018) rather than by a lookup of the attempt per row.
--
-- Also: practice_can_see_user() goes (nothing called it, and it said less than
-- the policies do).

create function practice_rule(p_shape text, p_column text default null)
returns text
language plpgsql
immutable
set search_path = public, pg_temp
as $$
declare
    v_org  constant text := 'org_id = (select practice_org())';
    v_me   constant text := '(select practice_user())';
    v_role constant text := '(select practice_role())';
    v_team text;
begin
    if p_shape = 'system' then
        return format('%s = ''system''', v_role);
    end if;
    if p_shape = 'org' then
        return v_org;
    end if;
    if p_column is null then
        raise exception 'practice_rule: shape % needs the member column', p_shape;
    end if;
    v_team := format(
        '%I in (select m.user_id from public.org_members m where m.org_id = (select practice_org())'
        ' and m.manager_user_id = %s and m.deleted_at is null)', p_column, v_me);
    return case p_shape
        when 'own' then format('%s and %I = %s', v_org, p_column, v_me)
        when 'member' then format(
            '%s and (%s = ''admin'' or %I = %s or (%s = ''manager'' and %s))',
            v_org, v_role, p_column, v_me, v_role, v_team)
        when 'coach' then format(
            '%s and (%s = ''admin'' or (%s = ''manager'' and (%I = %s or %s)))',
            v_org, v_role, v_role, p_column, v_me, v_team)
        else null
    end;
end
$$;
comment on function practice_rule(text, text) is
    'Migration helper: the condition of a policy shape (org, own, member, coach, system) over a member column.';
revoke all on function practice_rule(text, text) from public;

-- Replaces policy p_name of p_table (for practice_app) with one of these conditions.
create function practice_policy(
    p_table regclass, p_name text, p_command text, p_using text, p_check text default null)
returns void
language plpgsql
set search_path = public, pg_temp
as $$
begin
    execute format('drop policy if exists %I on %s', p_name, p_table);
    execute format('create policy %I on %s for %s to practice_app%s%s', p_name, p_table, p_command,
                   case when p_using is null then '' else format(' using (%s)', p_using) end,
                   case when p_check is null then '' else format(' with check (%s)', p_check) end);
end
$$;
comment on function practice_policy(regclass, text, text, text, text) is
    'Migration helper: (re)creates a practice_app policy from its conditions.';
revoke all on function practice_policy(regclass, text, text, text, text) from public;

do $policies$
declare
    v_system constant text := practice_rule('system');
    v_admin constant text := '(select practice_role()) = ''admin''';
    v_admin_or_system constant text := '(select practice_role()) in (''admin'', ''system'')';
    v_coach_role constant text := '(select practice_role()) in (''admin'', ''manager'')';
    v_scenario_exists constant text := 'exists (select 1 from public.scenarios s where s.id = scenario_id)';
begin
    -- Tenancy (orgs and memberships are written by the Clerk sync, as the system).
    perform practice_policy('orgs', 'orgs_select', 'select',
        format('id = (select practice_org()) or %s', v_system));
    perform practice_policy('orgs', 'orgs_system_insert', 'insert', null, v_system);
    perform practice_policy('orgs', 'orgs_system_update', 'update', v_system, v_system);
    perform practice_policy('orgs', 'orgs_system_delete', 'delete', v_system);
    -- Everyone sees their own row and their manager's; a manager their team's
    -- (by the row's own manager column); an admin the org's.
    perform practice_policy('org_members', 'org_members_select', 'select',
        format('%s or (%s and (%s or user_id = (select practice_user())'
               ' or ((select practice_role()) = ''manager'' and manager_user_id = (select practice_user()))'
               ' or user_id = (select practice_current_manager_user_id())))',
               v_system, practice_rule('org'), v_admin));
    perform practice_policy('org_members', 'org_members_insert', 'insert', null, v_system);
    perform practice_policy('org_members', 'org_members_update', 'update',
        format('%s or (%s and %s)', v_system, practice_rule('org'), v_admin),
        format('%s or (%s and %s)', v_system, practice_rule('org'), v_admin));
    perform practice_policy('org_members', 'org_members_delete', 'delete', v_system);
    perform practice_policy('dim_users', 'dim_users_select', 'select',
        format('%s and (%s or user_id = (select practice_user())'
               ' or ((select practice_role()) = ''manager'' and manager_user_id = (select practice_user())))',
               practice_rule('org'), v_admin));

    -- Content: built-in scenarios (no org) for every org; private ones for their
    -- author and the coaches.
    perform practice_policy('scenarios', 'scenarios_select', 'select',
        '(select practice_org()) is not null and (org_id is null or (org_id = (select practice_org())'
        ' and (visibility <> ''private'' or created_by_user_id = (select practice_user())'
        ' or (select practice_role()) in (''admin'', ''manager''))))');
    perform practice_policy('scenarios', 'scenarios_insert', 'insert', null,
        format('%s and %s', practice_rule('org'), v_coach_role));
    perform practice_policy('scenarios', 'scenarios_update', 'update',
        format('%s and %s', practice_rule('org'), v_coach_role),
        format('%s and %s', practice_rule('org'), v_coach_role));
    perform practice_policy('dim_scenarios', 'dim_scenarios_select', 'select',
        '(select practice_org()) is not null and (org_id is null or org_id = (select practice_org()))');
    perform practice_policy('scenario_metadata', 'scenario_metadata_select', 'select',
        practice_rule('org'));

    -- Assignments: seen by the assignee's member rule and by who assigned them;
    -- written by coaches for their team.
    perform practice_policy('assignments', 'assignments_select', 'select',
        format('(%s) or (%s and assigned_by_user_id = (select practice_user()))',
               practice_rule('member', 'assignee_user_id'), practice_rule('org')));
    perform practice_policy('assignments', 'assignments_insert', 'insert', null,
        format('%s and %s', practice_rule('coach', 'assignee_user_id'), v_scenario_exists));
    perform practice_policy('assignments', 'assignments_update', 'update',
        practice_rule('coach', 'assignee_user_id'),
        format('%s and %s', practice_rule('coach', 'assignee_user_id'), v_scenario_exists));
    perform practice_policy('assignments', 'assignments_delete', 'delete',
        practice_rule('coach', 'assignee_user_id'));

    -- Attempts: practised as oneself; seen and updated by the member rule and
    -- by the system of the org (a webhook for the call).
    perform practice_policy('scenario_attempts', 'scenario_attempts_insert', 'insert', null,
        format('%s and %s and (assignment_id is null or exists (select 1 from public.assignments a'
               ' where a.id = assignment_id and a.org_id = scenario_attempts.org_id'
               ' and a.assignee_user_id = scenario_attempts.clerk_user_id))',
               practice_rule('own', 'clerk_user_id'), v_scenario_exists));
    perform practice_policy('scenario_attempts', 'scenario_attempts_select', 'select',
        format('(%s) or (%s and %s)', practice_rule('member', 'clerk_user_id'),
               practice_rule('org'), v_system));
    perform practice_policy('scenario_attempts', 'scenario_attempts_update', 'update',
        format('(%s) or (%s and %s)', practice_rule('member', 'clerk_user_id'),
               practice_rule('org'), v_system),
        format('(%s) or (%s and %s)', practice_rule('member', 'clerk_user_id'),
               practice_rule('org'), v_system));
    -- An event is seen as its attempt is; logged by its attempt's owner (or the
    -- system) on an attempt of the org. owner_user_id comes from the locked
    -- attempt in the one statement that logs activity (attempt_log_activity);
    -- checking it here too would make this per-row lookup prefer the
    -- (org, user) index to the primary key on a small table.
    perform practice_policy('attempt_activity', 'attempt_activity_select', 'select',
        format('(%s) or (%s and %s)', practice_rule('member', 'owner_user_id'),
               practice_rule('org'), v_system));
    perform practice_policy('attempt_activity', 'attempt_activity_insert', 'insert', null,
        format('%s and (user_id = (select practice_user()) or %s) and exists (select 1'
               ' from public.scenario_attempts a where a.id = attempt_id'
               ' and a.org_id = attempt_activity.org_id)',
               practice_rule('org'), v_system));

    -- A learner's own records.
    perform practice_policy('chat_sessions', 'chat_sessions_select', 'select',
        practice_rule('member', 'user_id'));
    perform practice_policy('chat_sessions', 'chat_sessions_insert', 'insert', null,
        practice_rule('own', 'user_id'));
    perform practice_policy('chat_sessions', 'chat_sessions_update', 'update',
        practice_rule('own', 'user_id'), practice_rule('own', 'user_id'));
    perform practice_policy('chat_sessions', 'chat_sessions_delete', 'delete',
        format('%s and (user_id = (select practice_user()) or %s)', practice_rule('org'), v_admin));
    perform practice_policy('user_scenario_progress', 'user_scenario_progress_select', 'select',
        practice_rule('member', 'user_id'));
    perform practice_policy('user_scenario_progress', 'user_scenario_progress_insert', 'insert',
        null, format('%s and %s', practice_rule('own', 'user_id'), v_scenario_exists));
    perform practice_policy('user_scenario_progress', 'user_scenario_progress_update', 'update',
        practice_rule('own', 'user_id'), practice_rule('own', 'user_id'));

    -- The warehouse (read only; written by definer triggers).
    perform practice_policy('fact_scenario_attempts', 'fact_scenario_attempts_select', 'select',
        practice_rule('member', 'user_id'));
    perform practice_policy('fact_kpi_events', 'fact_kpi_events_select', 'select',
        practice_rule('member', 'user_id'));

    -- Operations.
    perform practice_policy('refresh_runs', 'refresh_runs_select', 'select', v_admin_or_system);
    perform practice_policy('webhook_events', 'webhook_events_select', 'select',
        format('%s or (%s and %s)', v_system, practice_rule('org'), v_admin));
    perform practice_policy('webhook_events', 'webhook_events_insert', 'insert', null, v_system);
    perform practice_policy('webhook_events', 'webhook_events_update', 'update', v_system, v_system);
    perform practice_policy('exports', 'exports_select', 'select',
        format('%s and (requested_by = (select practice_user()) or %s)',
               practice_rule('org'), v_admin_or_system));
    perform practice_policy('exports', 'exports_insert', 'insert', null,
        practice_rule('own', 'requested_by'));
    perform practice_policy('exports', 'exports_update', 'update',
        format('%s and (requested_by = (select practice_user()) or %s)',
               practice_rule('org'), v_admin_or_system),
        practice_rule('org'));
end
$policies$;

drop function practice_can_see_user(uuid, text);

-- ---------------------------------------------------------------------------
-- Catalog comments, saying what each object is rather than where its design
-- came from (the comments of 0003-0008 named the source documents).
-- ---------------------------------------------------------------------------
comment on table scenarios is
    'Scenario content. org_id NULL = built-in (read-only for the app, visible to all orgs). visibility private = creator, managers and admins of the owning org only.';
comment on table scenario_metadata is
    'Per-org engagement counters of a scenario. Written ONLY by SECURITY DEFINER triggers on scenario_attempts and user_scenario_progress; the app reads it.';
comment on table user_scenario_progress is
    'Per-user save/rating/progress of a scenario. is_saved, saved_at, user_rating, user_notes are written by the app (own rows; column grants); times_*/last_* by the attempt triggers.';
comment on table scenario_attempts is
    'One practice call of a trainee on a scenario, with an optimistic-concurrency version and autosave drafts.';
comment on table attempt_activity is
    'Append-only activity events of an attempt, visible as the attempt is (owner_user_id).';
comment on table chat_sessions is
    'Chat sessions with their scenario progress as JSONB (GET/PUT/DELETE /chat-sessions/{id}/scenario-progress).';
comment on table fact_scenario_attempts is
    'One row per completed attempt, written only by the completion trigger. date_key is the UTC date of started_at.';
comment on table fact_kpi_events is
    'Event-level KPIs: filler_word, interruption, question_asked, ... Filled by the completion trigger from scenario_attempts.kpis->''events''.';
comment on table dim_time is
    'Calendar dimension, prefilled 2024-01-01 .. 2028-12-31. Global, not tenant data.';
comment on materialized view mv_leaderboard_month is
    'Monthly (UTC) per-user averages. Refreshed by refresh_reporting_views().';
comment on materialized view mv_org_overview is
    'Org-wide KPIs for the admin dashboard; the week/month windows are as of the last refresh.';
comment on materialized view mv_scenario_insights is
    'Per-scenario performance of each org; a high score_stddev hints at an unclear rubric.';
comment on table exports is
    'CSV export jobs. The file lives in the exports bucket under s3_key; download URLs are minted on request.';
comment on function get_attempt_statistics(uuid) is
    'Attempt counts by status, average/median score, average duration and completion rate over the visible attempts of a scenario (NULL = all).';
comment on function get_active_attempts(uuid) is
    'Visible in-progress attempts (optionally of one scenario) with last activity and idle minutes, most idle first.';
