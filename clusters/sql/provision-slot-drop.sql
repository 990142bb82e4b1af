-- Provisioning: drop an inactive slot left by an earlier attempt, so pg_basebackup -C can
-- create it again. Param: slot.
SELECT pg_drop_replication_slot(slot_name)
FROM pg_replication_slots
WHERE slot_name = %(slot)s AND NOT active
