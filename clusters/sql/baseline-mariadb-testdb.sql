-- The `test` database mysql_install_db creates, and how many tables it holds.
SELECT COUNT(*) AS present,
       (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'test') AS tables
FROM information_schema.schemata WHERE schema_name = 'test'
