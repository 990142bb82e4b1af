SELECT setting, source, coalesce(sourcefile, '') AS sourcefile
FROM pg_settings WHERE name = 'password_encryption'
