-- A server's place in replication, for switchover and failover prechecks: in recovery or not,
-- the WAL received and replayed (standby) or written (primary), and its data directory.
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
       current_setting('data_directory') AS data_directory,
       current_setting('synchronous_standby_names') AS synchronous_standby_names
