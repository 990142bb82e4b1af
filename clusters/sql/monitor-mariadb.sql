-- What the collector reads from one MariaDB/MySQL server each cycle: one row.
SELECT @@read_only AS read_only,
       (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
         WHERE VARIABLE_NAME = 'THREADS_CONNECTED') AS threads_connected,
       (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
         WHERE VARIABLE_NAME = 'THREADS_RUNNING') AS threads_running,
       @@max_connections AS max_connections
