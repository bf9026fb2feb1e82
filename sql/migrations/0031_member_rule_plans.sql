-- 0031: practice_sees_member() (0021) as PL/pgSQL, so a pooled connection plans
-- its statement once, on every server version.
--
-- Why: 0021 wrote it in SQL with a SET clause (search_path), which the planner
-- never inlines, so it ran as a function of its own; servers before 18 plan a
-- SQL-language function's statement on every call (as 0017 found for the
-- completion pipeline). Every tracking function asks it first, through
-- practice_require_member(), and a cached tracking answer asks it again: on
-- PostgreSQL 15 each of those requests planned the member rule once more
-- (tests/integration/test_plan_cache.py counts the plannings). PL/pgSQL keeps
-- the plan per connection; its generic plan is forced, as for the functions
-- that call it, so the first five calls do not plan it afresh either.
--
-- What it says is unchanged: the same condition, practice_rule('member',
-- 'user_id') over org_members (0020). Its grants and comment stay (CREATE OR
-- REPLACE keeps them).
do $rule$
begin
    execute format($f$
        create or replace function practice_sees_member(p_member text)
        returns boolean
        language plpgsql
        stable
        security invoker
        set search_path = public, pg_temp
        set plan_cache_mode = force_generic_plan
        as $body$
        begin
            return exists (
                select 1 from public.org_members
                 where user_id = p_member and deleted_at is null and (%s));
        end
        $body$$f$, practice_rule('member', 'user_id'));
end
$rule$;
