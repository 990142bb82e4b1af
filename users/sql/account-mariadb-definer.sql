-- The views, routines, triggers and events whose DEFINER is one account: they stop working
-- once the account is dropped, so a drop is refused while there are any. DEFINER is written
-- user@host without quotes. Parameter: that text, four times. A MySQL run_sql template.
SELECT 'view' AS kind, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS name
FROM information_schema.VIEWS WHERE DEFINER = %s
UNION ALL
SELECT LOWER(ROUTINE_TYPE), CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME)
FROM information_schema.ROUTINES WHERE DEFINER = %s
UNION ALL
SELECT 'trigger', CONCAT(TRIGGER_SCHEMA, '.', TRIGGER_NAME)
FROM information_schema.TRIGGERS WHERE DEFINER = %s
UNION ALL
SELECT 'event', CONCAT(EVENT_SCHEMA, '.', EVENT_NAME)
FROM information_schema.EVENTS WHERE DEFINER = %s
ORDER BY 1, 2
