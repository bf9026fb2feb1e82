-- 0016: an update that completes nothing skips the completion work.
--
-- trigger_populate_fact() (0005) fires after every UPDATE of scenario_attempts:
-- every autosave, every activity batch. It called practice_complete_attempts()
-- with whatever ids it found, and that SQL function plans and runs its whole
-- pipeline (fact rows, KPI events, counters, assignments) even for an empty
-- list, which a save paid for. On
-- PostgreSQL before 18, which plans a SQL function on every call, it was also
-- planned on every save. Now the function is called only when some attempt
-- became completed; what it does then is unchanged.

create or replace function trigger_populate_fact()
returns trigger
language plpgsql
security definer
set search_path = public, pg_temp
as $$
declare
    v_completed uuid[];
begin
    if tg_op = 'INSERT' then
        v_completed := array(select n.id from new_attempts n where n.status = 'completed');
    else
        v_completed := array(
            select n.id from new_attempts n join old_attempts o on o.id = n.id
             where n.status = 'completed' and o.status is distinct from 'completed');
    end if;
    if cardinality(v_completed) > 0 then
        perform practice_complete_attempts(v_completed);
    end if;
    return null;
end
$$;
