-- Ask the postmaster to reload its configuration (pg_hba.conf included). pg_conf_load_time() is
-- read first: a new session showing a later load time was started after the reload.
SELECT pg_conf_load_time() AS loaded, pg_reload_conf() AS signalled
