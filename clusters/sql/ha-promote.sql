-- Promote this standby and wait (at most 30 s) until it accepts writes.
SELECT pg_promote(true, 30)
