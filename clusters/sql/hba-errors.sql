-- Lines of the server's pg_hba.conf, as it is on disk now, that PostgreSQL cannot load. The view
-- parses the file anew at each query, with the server's own code. A line that failed without a
-- message has no type either (PostgreSQL 15 does this for a RADIUS server name it cannot resolve),
-- so it is reported too. Needs a superuser (the view is revoked from PUBLIC).
SELECT line_number,
       coalesce(error, 'PostgreSQL cannot load this line and gives no reason here; see the server log') AS error
FROM pg_hba_file_rules
WHERE error IS NOT NULL OR type IS NULL
ORDER BY line_number
