-- The database-level privileges of one account (read back after a grant or a revoke), from
-- mysql.db: one row per database pattern (wildcards as stored, escaped with a backslash).
-- Parameters: user, host. A MySQL run_sql template.
SELECT Db AS db,
       Select_priv = 'Y' AS `select`, Insert_priv = 'Y' AS `insert`,
       Update_priv = 'Y' AS `update`, Delete_priv = 'Y' AS `delete`,
       Execute_priv = 'Y' AS `execute`
FROM mysql.db
WHERE User = %s AND Host = %s
ORDER BY Db
