-- Where the server writes its log now (NULL without the logging collector), for the viewer.
SELECT current_setting('data_directory') AS data_directory,
       pg_current_logfile() AS current_logfile
