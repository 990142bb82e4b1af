-- A physical replication slot for a standby, reserving WAL at once; nothing when it exists.
SELECT pg_create_physical_replication_slot(%(slot)s, true)
WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = %(slot)s)
