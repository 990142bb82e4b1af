-- When this session's server last loaded its configuration files (inherited from the postmaster).
SELECT pg_conf_load_time() AS loaded
