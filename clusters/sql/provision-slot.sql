-- Provisioning: the standby's physical replication slot on the primary, if any. Param: slot.
SELECT active
FROM pg_replication_slots
WHERE slot_name = %(slot)s
