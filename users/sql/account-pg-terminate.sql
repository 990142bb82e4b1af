-- End every session of one role on this server but the console's own, waiting up to 5 s for
-- each to be gone (PostgreSQL 14 and later; account-pg-terminate-nowait.sql before that).
-- One row per session: its pid and whether it ended in time.
SELECT a.pid, pg_terminate_backend(a.pid, 5000) AS terminated
FROM pg_stat_activity a
WHERE a.usename = %(role)s AND a.pid <> pg_backend_pid()
