-- Through pgpool-II: pg_notify() is volatile, so pgpool-II treats the statement as a write and
-- sends it to the primary (a standby refuses NOTIFY during recovery): where writes go.
SELECT inet_server_addr()::text AS server, pg_notify('dbconsole_ha_probe', '') AS notified
