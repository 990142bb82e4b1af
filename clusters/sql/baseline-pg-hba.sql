-- pg_hba.conf as it is on disk (superusers, or a role granted SELECT on the view).
SELECT line_number, type, database, user_name, address, netmask, auth_method, error
FROM pg_hba_file_rules
ORDER BY line_number NULLS LAST
