-- 0029: the history page (GET /users/{userId}/attempts) as JSON made by
-- PostgreSQL, so the handler sends it without decoding and re-encoding it.
--
-- Why: a page of 50 attempts carries their KPI and score-breakdown documents
-- (~46 KB). Read as rows, every document was parsed into Python objects,
-- validated and serialized again: more time than the statement itself, and the
-- one tracking route over its 2 ms target (docs/learner.md). Here the same rows
-- (0021's get_user_scenario_attempts: the member rule first, the same filters,
-- order, keyset and indexes) come back as one JSON array, each item the
-- HistoryAttempt of practice.tracking.models with its members in its order,
-- and every scalar written as that model writes it:
--   instants  ISO 8601 in the session's time zone, microseconds only when there
--             are some, "Z" for UTC ("2026-12-02T02:22:18Z", "...18.500000+01:00");
--   score     a JSON float ("72.9", "90.0": a float always shows a fraction);
--   text      to_json's escaping;
--   documents as stored (jsonb's text: objects or null; anything else is
--             refused, SQLSTATE PDOCS, as the model refused it, so a page never
--             holds what the contract does not describe).
-- Only the documents' spacing differs from pydantic's output ({"a": 1} for
-- {"a":1}): the same JSON. tests/integration/test_history_page.py holds the
-- page equal to the model's rendering of 0021's rows.
--
-- The item is built by concatenation rather than json_build_object: every piece
-- is JSON already (jsonb's text, to_json's) or made of characters JSON needs no
-- escape for (uuids, instants, numbers), and concatenation skips the per-value
-- type lookups json_build_object makes (about 0.1 ms of a 50-attempt page).
--
-- 0021's function stays: the five functions are what seed 000 names.
--
-- Plans: PL/pgSQL with its generic plan forced, as 0021: a pooled connection
-- plans each statement once. The helpers are plain SQL expressions (no SET, not
-- strict) that the planner inlines into those plans.

-- An instant as pydantic writes a timestamptz psycopg read in this session.
create function practice_json_instant(p_at timestamptz)
returns text
language sql
stable
parallel safe
as $$
    select replace(replace(replace(
        to_char(p_at, 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM'),
        '.000000+', '+'), '.000000-', '-'), '+00:00', 'Z')
$$;
comment on function practice_json_instant(timestamptz) is
    'An instant as the API writes it: ISO 8601 in the session time zone, microseconds only when non-zero, Z for UTC.';

-- A numeric as a JSON float, as Python writes float(p_value): the shortest
-- digits that read back as the same double, and a fraction even when whole.
create function practice_json_float(p_value numeric)
returns text
language sql
immutable
parallel safe
as $$
    select case when p_value = trunc(p_value) then trunc(p_value)::text || '.0'
                else p_value::float8::text end
$$;
comment on function practice_json_float(numeric) is
    'A numeric as Python writes it as a float (90 -> 90.0, 72.90 -> 72.9); for magnitudes between 1e-4 and 1e15 (a score).';

-- One attempt of the page as its HistoryAttempt JSON object.
create function practice_history_item(
    p_id uuid, p_scenario_id uuid, p_started_at timestamptz, p_ended_at timestamptz,
    p_duration_seconds integer, p_score numeric, p_score_breakdown jsonb, p_kpis jsonb,
    p_feedback_text text)
returns text
language sql
stable
parallel safe
as $$
    select '{"attempt_id":"' || p_id
        || '","scenario_id":"' || p_scenario_id
        || '","started_at":' || coalesce('"' || practice_json_instant(p_started_at) || '"', 'null')
        || ',"ended_at":' || coalesce('"' || practice_json_instant(p_ended_at) || '"', 'null')
        || ',"duration_seconds":' || coalesce(p_duration_seconds::text, 'null')
        || ',"score":' || coalesce(practice_json_float(p_score), 'null')
        || ',"score_breakdown":' || coalesce(p_score_breakdown::text, 'null')
        || ',"kpis":' || coalesce(p_kpis::text, 'null')
        || ',"feedback_text":' || coalesce(to_json(p_feedback_text)::text, 'null')
        || '}'
$$;
comment on function practice_history_item(uuid, uuid, timestamptz, timestamptz, integer, numeric, jsonb, jsonb, text) is
    'One completed attempt as the JSON object the history page sends (HistoryAttempt).';

revoke all on function practice_json_instant(timestamptz) from public;
revoke all on function practice_json_float(numeric) from public;
revoke all on function practice_history_item(uuid, uuid, timestamptz, timestamptz, integer, numeric, jsonb, jsonb, text) from public;
grant execute on function practice_json_instant(timestamptz) to practice_app;
grant execute on function practice_json_float(numeric) to practice_app;
grant execute on function practice_history_item(uuid, uuid, timestamptz, timestamptz, integer, numeric, jsonb, jsonb, text) to practice_app;

-- ---------------------------------------------------------------------------
-- The page: one row, whatever the member's history holds
-- ---------------------------------------------------------------------------
--   attempts         the JSON array of the page's attempts, newest first ('[]' for none);
--   attempt_count    how many it holds;
--   last_started_at, last_attempt_id   the last one's keyset position (the cursor
--                    of the next page when the page is full), null for none.
create function get_user_scenario_attempts_page(
    p_org_id uuid, p_clerk_user_id text, p_scenario_id uuid default null,
    p_limit integer default 50,
    p_before_started_at timestamptz default null, p_before_id uuid default null)
returns table (
    attempts        text,
    attempt_count   integer,
    last_started_at timestamptz,
    last_attempt_id uuid)
language plpgsql
stable
security invoker
set search_path = public, pg_temp
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
    v_limit constant integer := least(greatest(coalesce(p_limit, 50), 1), 200);
    v_page record;
begin
    perform practice_require_member(p_org_id, p_clerk_user_id);
    -- Two statements, as in 0021, so each keeps the index its filter fits.
    if p_scenario_id is null then
        -- idx_scenario_attempts_user_recent
        select '[' || coalesce(string_agg(practice_history_item(
                       p.id, p.scenario_id, p.started_at, p.ended_at, p.duration_seconds,
                       p.score, p.score_breakdown, p.kpis, p.feedback_text),
                   ',' order by p.started_at desc, p.id desc), '') || ']' as attempts,
               count(*)::integer as attempt_count,
               min(p.started_at) as last_started_at,
               (array_agg(p.id order by p.started_at, p.id))[1] as last_attempt_id,
               bool_and(coalesce(jsonb_typeof(p.score_breakdown), 'null') in ('object', 'null')
                        and coalesce(jsonb_typeof(p.kpis), 'null') in ('object', 'null'))
                   as documents_ok
          into v_page
          from (select a.id, a.scenario_id, a.started_at, a.ended_at, a.duration_seconds,
                       a.score, a.score_breakdown, a.kpis, a.feedback_text
                  from scenario_attempts a
                 where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
                   and a.status = 'completed'
                   and (p_before_started_at is null
                        or (a.started_at <= p_before_started_at
                            and (a.started_at < p_before_started_at or a.id < p_before_id)))
                 order by a.started_at desc, a.id desc
                 limit v_limit) p;
    else
        -- idx_scenario_attempts_user_scenario_time
        select '[' || coalesce(string_agg(practice_history_item(
                       p.id, p.scenario_id, p.started_at, p.ended_at, p.duration_seconds,
                       p.score, p.score_breakdown, p.kpis, p.feedback_text),
                   ',' order by p.started_at desc, p.id desc), '') || ']' as attempts,
               count(*)::integer as attempt_count,
               min(p.started_at) as last_started_at,
               (array_agg(p.id order by p.started_at, p.id))[1] as last_attempt_id,
               bool_and(coalesce(jsonb_typeof(p.score_breakdown), 'null') in ('object', 'null')
                        and coalesce(jsonb_typeof(p.kpis), 'null') in ('object', 'null'))
                   as documents_ok
          into v_page
          from (select a.id, a.scenario_id, a.started_at, a.ended_at, a.duration_seconds,
                       a.score, a.score_breakdown, a.kpis, a.feedback_text
                  from scenario_attempts a
                 where a.org_id = p_org_id and a.clerk_user_id = p_clerk_user_id
                   and a.scenario_id = p_scenario_id and a.status = 'completed'
                   and (p_before_started_at is null
                        or (a.started_at <= p_before_started_at
                            and (a.started_at < p_before_started_at or a.id < p_before_id)))
                 order by a.started_at desc, a.id desc
                 limit v_limit) p;
    end if;
    if v_page.documents_ok is false then
        raise exception 'an attempt''s score_breakdown or kpis is not a JSON object'
            using errcode = 'PDOCS';
    end if;
    attempts := v_page.attempts;
    attempt_count := v_page.attempt_count;
    last_started_at := v_page.last_started_at;
    last_attempt_id := v_page.last_attempt_id;
    return next;
end
$$;
comment on function get_user_scenario_attempts_page(uuid, text, uuid, integer, timestamptz, uuid) is
    'get_user_scenario_attempts (0021) as one row: the page as a JSON array of HistoryAttempt items, their count and the last one''s keyset position. PNSEE when the member is not the caller''s to see; PDOCS when a document is not an object.';

revoke all on function get_user_scenario_attempts_page(uuid, text, uuid, integer, timestamptz, uuid) from public;
grant execute on function get_user_scenario_attempts_page(uuid, text, uuid, integer, timestamptz, uuid) to practice_app;
