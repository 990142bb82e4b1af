-- The settings a DBA checks first on a node, with where each value comes from.
SELECT name, setting AS value, coalesce(unit, '') AS unit, source
  FROM pg_settings
 WHERE name IN ('listen_addresses', 'port', 'synchronous_standby_names', 'synchronous_commit',
                'archive_mode', 'archive_command', 'wal_level', 'max_connections',
                'hot_standby', 'data_directory')
 ORDER BY name
