-- Every user@host of a MariaDB server (10.4 and later: mysql.global_priv), roles excepted, with
-- what the account inventory shows: ACCOUNT LOCK, an expired password, SUPER, the roles granted
-- to it, the authentication plugin, the time of the last password change (epoch seconds; 0 when
-- the password was expired by hand), the alternatives of IDENTIFIED VIA ... OR ... (auth_or: a
-- JSON list whose {} stands for the main plugin) and the password lifetime (NULL: the server's default).
-- A MySQL run_sql template: a literal percent sign would be written twice.
SELECT gp.User AS name,
       gp.Host AS host,
       coalesce(JSON_VALUE(gp.Priv, '$.account_locked'), 'false') IN ('true', '1') AS locked,
       u.password_expired = 'Y' AS password_expired,
       u.Super_priv = 'Y' AS superuser,
       coalesce(JSON_VALUE(gp.Priv, '$.plugin'), u.plugin, '') AS plugin,
       JSON_QUERY(gp.Priv, '$.auth_or') AS auth_or,
       JSON_VALUE(gp.Priv, '$.password_last_changed') AS password_last_changed,
       JSON_VALUE(gp.Priv, '$.password_lifetime') AS password_lifetime,
       @@global.default_password_lifetime AS default_password_lifetime,
       (SELECT JSON_ARRAYAGG(rm.Role) FROM mysql.roles_mapping rm
        WHERE rm.User = gp.User AND rm.Host = gp.Host) AS member_of,
       UNIX_TIMESTAMP() AS server_now
FROM mysql.global_priv gp
JOIN mysql.user u ON u.User = gp.User AND u.Host = gp.Host
WHERE u.is_role <> 'Y'
ORDER BY gp.User, gp.Host
