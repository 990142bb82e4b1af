-- What pgBackRest needs to know of the server it backs up (pg1-path, pg1-port,
-- pg1-socket-path), and the archiving settings the backup depends on.
SELECT current_setting('data_directory') AS data_directory,
       current_setting('port')::int AS port,
       split_part(current_setting('unix_socket_directories'), ',', 1) AS socket_directory,
       current_setting('archive_mode') AS archive_mode,
       current_setting('archive_command') AS archive_command
