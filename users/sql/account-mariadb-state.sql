-- One MariaDB user@host as the lifecycle actions see it (10.4 and later: mysql.global_priv):
-- whether it is locked (ACCOUNT LOCK), its password expired by hand, its plugin, its password
-- lifetime in days (NULL: the server's default, 0: never), the roles
-- granted to it, and the client threads of the same user name from a host its host pattern
-- matches. Parameters: user, host, user, host. A MySQL run_sql template.
SELECT coalesce(JSON_VALUE(gp.Priv, '$.account_locked'), 'false') IN ('true', '1') AS locked,
       u.password_expired = 'Y' AS password_expired,
       u.Super_priv = 'Y' AS superuser,
       coalesce(JSON_VALUE(gp.Priv, '$.plugin'), u.plugin, '') AS plugin,
       JSON_VALUE(gp.Priv, '$.password_lifetime') AS password_lifetime,
       (SELECT JSON_ARRAYAGG(rm.Role) FROM mysql.roles_mapping rm
        WHERE rm.User = gp.User AND rm.Host = gp.Host) AS member_of,
       (SELECT count(*) FROM information_schema.PROCESSLIST p
        WHERE p.USER = %s AND SUBSTRING_INDEX(p.HOST, ':', 1) LIKE %s
          AND p.ID <> CONNECTION_ID()) AS sessions
FROM mysql.global_priv gp
JOIN mysql.user u ON u.User = gp.User AND u.Host = gp.Host
WHERE gp.User = %s AND gp.Host = %s AND u.is_role <> 'Y'
