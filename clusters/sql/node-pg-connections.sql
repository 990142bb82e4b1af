-- Client connections by state (the console's own included), and the server's limit.
SELECT coalesce(state, 'unknown') AS state, count(*) AS connections,
       current_setting('max_connections')::int AS max_connections
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'
 GROUP BY 1
 ORDER BY 2 DESC, 1
