-- The primary's standbys: where from, state, sync state and how far behind each has replayed.
SELECT application_name, client_addr::text AS client_addr, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes
FROM pg_stat_replication
ORDER BY application_name
