-- The standbys streaming from this server, one row per WAL sender.
SELECT host(client_addr) AS client_addr, application_name, state, sync_state
  FROM pg_stat_replication
 WHERE client_addr IS NOT NULL
 ORDER BY application_name, client_addr
