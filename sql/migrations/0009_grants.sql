-- 0009_grants.sql
--
-- What: every privilege of practice_app and practice_reporting, explicit per
-- table, view and function. No default privileges: a table added later gets
-- nothing until its migration grants it.
--
-- Why: row-level security decides WHICH rows; these grants decide WHAT the
-- app may do at all. The app role writes only where the app writes; derived
-- tables (fact_*, dim_*, scenario_metadata, the trigger-maintained columns of
-- user_scenario_progress) are written only by SECURITY DEFINER triggers.
-- practice_reporting (the BI role) reads fact_*, dim_* and mv_* only.
--
-- Identity columns (attempt_activity, webhook_events) need no sequence
-- privilege for INSERT; USAGE is granted anyway so explicit nextval-based
-- tooling works.

-- ---------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------
grant usage on schema public to practice_app, practice_reporting;

-- ---------------------------------------------------------------------------
-- practice_app: tables and views
-- ---------------------------------------------------------------------------
-- Tenancy; writes only under the 'system' context (Clerk sync) or, for
-- org_members updates, an org admin (policies in 0002).
grant select, insert, update, delete on orgs to practice_app;
grant select, insert, update, delete on org_members to practice_app;

-- Content and coaching.
grant select, insert, update on scenarios to practice_app;
grant select, insert, update, delete on assignments to practice_app;

-- Attempts.
grant select, insert, update on scenario_attempts to practice_app;
grant select, insert on attempt_activity to practice_app;
grant usage on sequence attempt_activity_id_seq to practice_app;
grant select, insert, update, delete on chat_sessions to practice_app;

-- Engagement: counters are trigger-maintained, so the app may only read them;
-- on user_scenario_progress it may write only the user-owned columns.
grant select on scenario_metadata to practice_app;
grant select on user_scenario_progress to practice_app;
grant insert (org_id, user_id, scenario_id, is_saved, saved_at, user_rating, user_notes)
    on user_scenario_progress to practice_app;
grant update (is_saved, saved_at, user_rating, user_notes, updated_at)
    on user_scenario_progress to practice_app;

-- Star schema (dashboards; rows filtered by RLS) and the org-scoped MV windows.
grant select on fact_scenario_attempts, fact_kpi_events to practice_app;
grant select on dim_users, dim_scenarios, dim_time to practice_app;
grant select on v_leaderboard_month, v_org_overview, v_scenario_insights to practice_app;
-- Deliberately no privilege on mv_*: materialized views have no RLS.

-- Operations.
grant select on refresh_runs to practice_app;
grant select, insert, update on webhook_events to practice_app;
grant usage on sequence webhook_events_id_seq to practice_app;
grant select, insert, update on exports to practice_app;

-- ---------------------------------------------------------------------------
-- practice_reporting: read-only BI
-- ---------------------------------------------------------------------------
grant select on fact_scenario_attempts, fact_kpi_events to practice_reporting;
grant select on dim_users, dim_scenarios, dim_time to practice_reporting;
grant select on mv_leaderboard_month, mv_org_overview, mv_scenario_insights to practice_reporting;

-- ---------------------------------------------------------------------------
-- Functions: nothing for PUBLIC; EXECUTE to practice_app on what it calls.
-- ---------------------------------------------------------------------------
revoke execute on all functions in schema public from public;

-- Called from policies (must be executable by the querying role) and by code.
grant execute on function practice_current_manager_user_id() to practice_app;
grant execute on function practice_can_see_user(uuid, text) to practice_app;
-- Functions of a feature are granted in that feature's migration (0008 on).

-- SECURITY DEFINER entry points (see their comments).
grant execute on function refresh_reporting_views(text, text) to practice_app;

-- Not granted on purpose: trigger functions (trigger_*; triggers fire without
-- EXECUTE and they cannot be called directly), practice_set_updated_at,
-- practice_jsonb_int and practice_write_kpi_events (run only inside the
-- definer triggers, as the owner), practice_owner_policy (migration helper).
