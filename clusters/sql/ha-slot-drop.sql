-- An inactive replication slot left on a server that became a standby (nothing when absent).
SELECT pg_drop_replication_slot(slot_name)
FROM pg_replication_slots
WHERE slot_name = %(slot)s AND NOT active
