-- Every global variable of a MariaDB server, or the one named (NULL for all), with its type
-- and limits, where its value comes from (COMPILE-TIME, CONFIG with the file, COMMAND-LINE,
-- AUTO, SQL…), whether it can change while the server runs (not read-only), and whether it is
-- a server option at all (COMMAND_LINE_ARGUMENT), so it can be written in an option file.
SELECT LOWER(VARIABLE_NAME) AS name, GLOBAL_VALUE AS value,
       GLOBAL_VALUE_ORIGIN AS origin, COALESCE(GLOBAL_VALUE_PATH, '') AS path,
       DEFAULT_VALUE AS default_value, VARIABLE_TYPE AS type,
       NUMERIC_MIN_VALUE AS min, NUMERIC_MAX_VALUE AS max, NUMERIC_BLOCK_SIZE AS block_size,
       ENUM_VALUE_LIST AS enum_values, READ_ONLY = 'YES' AS is_read_only,
       COMMAND_LINE_ARGUMENT IS NOT NULL AS is_option, VARIABLE_COMMENT AS description
  FROM information_schema.SYSTEM_VARIABLES
 WHERE VARIABLE_SCOPE <> 'SESSION ONLY' AND (%s IS NULL OR VARIABLE_NAME = UPPER(%s))
 ORDER BY 1
