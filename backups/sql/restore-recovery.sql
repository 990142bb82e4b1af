-- Whether a restored server still replays WAL (false once it reached its target and promoted).
SELECT pg_is_in_recovery() AS in_recovery
