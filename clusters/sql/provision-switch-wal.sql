-- Provisioning: close the current WAL segment so that it is archived now.
SELECT pg_walfile_name(pg_switch_wal()) AS segment
