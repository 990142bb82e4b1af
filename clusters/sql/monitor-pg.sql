-- What the collector reads from one PostgreSQL server each cycle, primary or standby: one row,
-- one round trip. `standbys` lists the physical WAL senders of this server (empty on a standby
-- that feeds no cascade), lags in bytes behind this server's current (or received) WAL position.
-- The role needs pg_monitor (or superuser) for pg_ls_archive_statusdir(), pg_current_logfile()
-- and other sessions' states in pg_stat_activity.
SELECT pg_is_in_recovery() AS in_recovery,
       pg_current_logfile() AS current_logfile,
       (SELECT coalesce(json_object_agg(s.state, s.n), '{}')
          FROM (SELECT coalesce(a.state, 'unknown') AS state, count(*) AS n
                  FROM pg_stat_activity AS a
                 WHERE a.backend_type = 'client backend'
                 GROUP BY 1) AS s) AS connections,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
           AS connections_total,
       current_setting('max_connections')::int AS max_connections,
       ar.failed_count,
       extract(epoch FROM now() - ar.last_archived_time)::float8 AS last_archived_age,
       (SELECT count(*) FROM pg_ls_archive_statusdir() AS f WHERE f.name LIKE '%.ready')
           AS archive_ready,
       (SELECT w.status FROM pg_stat_wal_receiver AS w LIMIT 1) AS receiver_status,
       CASE WHEN pg_is_in_recovery()
            THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8
       END AS own_replay_gap_bytes,
       (SELECT coalesce(json_agg(json_build_object(
                   'application_name', r.application_name,
                   'client_addr', host(r.client_addr),
                   'state', r.state,
                   'sync_state', r.sync_state,
                   'write_lag_bytes', pg_wal_lsn_diff(p.lsn, r.write_lsn),
                   'flush_lag_bytes', pg_wal_lsn_diff(p.lsn, r.flush_lsn),
                   'replay_lag_bytes', pg_wal_lsn_diff(p.lsn, r.replay_lsn),
                   'write_lag_s', extract(epoch FROM r.write_lag),
                   'flush_lag_s', extract(epoch FROM r.flush_lag),
                   'replay_lag_s', extract(epoch FROM r.replay_lag))
                   ORDER BY r.application_name), '[]')
          FROM pg_stat_replication AS r,
               (SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                            ELSE pg_current_wal_lsn() END AS lsn) AS p
         WHERE r.client_addr IS NOT NULL AND r.state <> 'backup') AS standbys
  FROM pg_stat_archiver AS ar
