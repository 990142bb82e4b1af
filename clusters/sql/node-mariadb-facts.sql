-- The node page's facts of one MariaDB/MySQL server: one row.
SELECT @@version AS version,
       (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
         WHERE VARIABLE_NAME = 'UPTIME') AS uptime,
       @@read_only AS read_only,
       (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
         WHERE VARIABLE_NAME = 'THREADS_CONNECTED') AS threads_connected,
       @@datadir AS data_directory,
       @@log_error AS log_error
