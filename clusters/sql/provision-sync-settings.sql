-- Provisioning: the primary's synchronous replication settings as a new session sees them.
SELECT current_setting('synchronous_standby_names') AS names,
       current_setting('synchronous_commit') AS commit
