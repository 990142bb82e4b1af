-- The node page's facts of one PostgreSQL server: one row. pg_current_logfile() is NULL
-- without the logging collector; it may be relative to the data directory.
SELECT current_setting('server_version') AS version,
       pg_postmaster_start_time() AS started,
       now() - pg_postmaster_start_time() AS uptime,
       pg_is_in_recovery() AS in_recovery,
       (pg_control_checkpoint()).timeline_id AS timeline,
       current_setting('data_directory') AS data_directory,
       pg_current_logfile() AS current_logfile
