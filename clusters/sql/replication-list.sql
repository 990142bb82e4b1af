-- The physical standbys streaming from this server, one row per WAL sender; base backups in
-- progress and logical replication (a WAL sender holding a logical slot) are left out.
SELECT host(r.client_addr) AS client_addr, r.application_name, r.state, r.sync_state
  FROM pg_stat_replication AS r
 WHERE r.client_addr IS NOT NULL
   AND r.state <> 'backup'
   AND NOT EXISTS (SELECT 1
                     FROM pg_replication_slots AS s
                    WHERE s.active_pid = r.pid AND s.slot_type = 'logical')
 ORDER BY r.application_name, r.client_addr
