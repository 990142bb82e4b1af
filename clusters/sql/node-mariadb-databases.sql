-- Size of every schema (data and indexes of its tables), largest first.
SELECT s.SCHEMA_NAME AS name, COALESCE(SUM(t.DATA_LENGTH + t.INDEX_LENGTH), 0) AS size
  FROM information_schema.SCHEMATA s
  LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
 GROUP BY s.SCHEMA_NAME
 ORDER BY 2 DESC, 1
