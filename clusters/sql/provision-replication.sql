-- Provisioning: how a standby replicates, seen from the primary. Param: name (its
-- application_name).
SELECT state, sync_state
FROM pg_stat_replication
WHERE application_name = %(name)s
