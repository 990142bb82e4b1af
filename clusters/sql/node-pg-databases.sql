-- Size of every database the console's role may connect to, largest first.
SELECT datname AS name, pg_database_size(oid) AS size
  FROM pg_database
 WHERE has_database_privilege(oid, 'CONNECT')
 ORDER BY 2 DESC, 1
