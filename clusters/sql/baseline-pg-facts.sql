SELECT current_setting('password_encryption') AS password_encryption,
       current_setting('ssl') AS ssl,
       current_setting('listen_addresses') AS listen_addresses,
       pg_is_in_recovery() AS in_recovery,
       current_user AS current_role,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS is_superuser,
       (SELECT source || coalesce(' ' || sourcefile, '') FROM pg_settings
         WHERE name = 'password_encryption') AS password_encryption_source
