-- What the collector reads from one PostgreSQL server each cycle, primary or standby: one row,
-- one round trip. `standbys` lists the physical WAL senders of this server (empty on a standby
-- that feeds no cascade), lags in bytes behind this server's current (or received) WAL position
-- and in seconds as the server measured them. `slots` lists the replication slots with the WAL
-- each one holds back; `receiver` is this server's WAL receiver (a standby's; null on a primary).
-- `wal_lsn` is the position lags and retained WAL are measured from.
-- The role needs pg_monitor (or superuser) for pg_ls_archive_statusdir(), pg_current_logfile()
-- and other sessions' states in pg_stat_activity.
WITH p AS (
    SELECT CASE WHEN pg_is_in_recovery()
                THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END AS lsn
)
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
       ar.archived_count,
       ar.failed_count,
       ar.last_archived_wal,
       ar.last_archived_time,
       extract(epoch FROM now() - ar.last_archived_time)::float8 AS last_archived_age,
       extract(epoch FROM now() - ar.last_failed_time)::float8 AS last_failed_age,
       ar.last_failed_wal,
       ar.last_failed_time,
       (SELECT count(*) FROM pg_ls_archive_statusdir() AS f WHERE f.name LIKE '%.ready')
           AS archive_ready,
       (SELECT w.status FROM pg_stat_wal_receiver AS w LIMIT 1) AS receiver_status,
       (SELECT json_build_object(
                   'status', w.status,
                   'sender_host', w.sender_host,
                   'sender_port', w.sender_port,
                   'slot_name', w.slot_name,
                   'received_lsn', w.flushed_lsn::text,
                   'replayed_lsn', pg_last_wal_replay_lsn()::text,
                   'receive_replay_gap_bytes', greatest(0, pg_wal_lsn_diff(
                       pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())),
                   'last_msg_receipt_time', w.last_msg_receipt_time,
                   'last_msg_age_s', extract(epoch FROM now() - w.last_msg_receipt_time),
                   'latest_end_time', w.latest_end_time)
          FROM pg_stat_wal_receiver AS w LIMIT 1) AS receiver,
       -- Replay runs ahead of the received position when the standby replayed WAL from
       -- pg_wal or the archive before streaming (the receiver restarts at a segment's start).
       CASE WHEN pg_is_in_recovery()
            THEN greatest(0, pg_wal_lsn_diff(pg_last_wal_receive_lsn(),
                                             pg_last_wal_replay_lsn()))::float8
       END AS own_replay_gap_bytes,
       p.lsn::text AS wal_lsn,
       (SELECT coalesce(json_agg(json_build_object(
                   'application_name', r.application_name,
                   'client_addr', host(r.client_addr),
                   'state', r.state,
                   'sync_state', r.sync_state,
                   'sync_priority', r.sync_priority,
                   'write_lag_bytes', pg_wal_lsn_diff(p.lsn, r.write_lsn),
                   'flush_lag_bytes', pg_wal_lsn_diff(p.lsn, r.flush_lsn),
                   'replay_lag_bytes', pg_wal_lsn_diff(p.lsn, r.replay_lsn),
                   'write_lag_s', extract(epoch FROM r.write_lag),
                   'flush_lag_s', extract(epoch FROM r.flush_lag),
                   'replay_lag_s', extract(epoch FROM r.replay_lag),
                   'reply_age_s', extract(epoch FROM now() - r.reply_time))
                   ORDER BY r.application_name), '[]')
          FROM pg_stat_replication AS r
         WHERE r.client_addr IS NOT NULL AND r.state <> 'backup') AS standbys,
       (SELECT coalesce(json_agg(json_build_object(
                   'slot_name', sl.slot_name,
                   'slot_type', sl.slot_type,
                   'database', sl.database,
                   'active', sl.active,
                   'wal_status', sl.wal_status,
                   'retained_bytes', pg_wal_lsn_diff(p.lsn, sl.restart_lsn),
                   'safe_wal_size', sl.safe_wal_size)
                   ORDER BY sl.slot_name), '[]')
          FROM pg_replication_slots AS sl) AS slots
  FROM pg_stat_archiver AS ar, p
