-- Where a restored server's recovery is: still in recovery, paused at its target, or over.
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE 'not in recovery' END
           AS pause_state
