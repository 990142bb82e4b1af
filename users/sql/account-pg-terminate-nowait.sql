-- End every session of one role on this server but the console's own (PostgreSQL before 14:
-- pg_terminate_backend cannot wait there). One row per session: its pid and whether the signal
-- was sent.
SELECT a.pid, pg_terminate_backend(a.pid) AS terminated
FROM pg_stat_activity a
WHERE a.usename = %(role)s AND a.pid <> pg_backend_pid()
