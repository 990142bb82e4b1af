-- Through pgpool-II: a read-only statement, load balanced: which backend served it.
SELECT inet_server_addr()::text AS server
