-- 0015: the hot statements of 0014 keep one plan per server connection.
--
-- PL/pgSQL caches a plan per statement, but the plan cache plans a statement
-- with parameters afresh on every call ("custom" plans) unless the generic plan
-- it builds after five calls looks no costlier. For these statements it never
-- does: an `id = any($1)` of unknown length and the row-level security
-- sub-plans estimate higher than a custom plan for the values at hand, so each
-- request re-planned them once the table had some thousands of rows (3
-- plannings per state request instead of 2). Every
-- one of them reaches its rows by primary key, so the generic plan is the right
-- one for any input; forcing it is scoped to the call (a SET clause of the
-- function), so no session state is left for a pooler to carry.
--
-- attempt_write_verdict() takes no SET clause: it would stop its inlining.

alter function attempt_states(uuid, uuid[]) set plan_cache_mode = force_generic_plan;
alter function attempt_save_drafts(uuid, text, jsonb) set plan_cache_mode = force_generic_plan;
alter function attempt_log_activity(uuid, text, jsonb) set plan_cache_mode = force_generic_plan;
alter function attempt_submit(uuid, text, jsonb) set plan_cache_mode = force_generic_plan;
