-- Provisioning: reload the configuration (after ALTER SYSTEM).
SELECT pg_reload_conf() AS signalled
