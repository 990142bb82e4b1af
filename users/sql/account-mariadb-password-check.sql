-- Whether one account's stored authentication string is the hash the console just set (read
-- back after a create or a rotation). Parameters: hash, user, host. A MySQL run_sql template.
SELECT JSON_VALUE(gp.Priv, '$.authentication_string') = %s AS matches
FROM mysql.global_priv gp
WHERE gp.User = %s AND gp.Host = %s
