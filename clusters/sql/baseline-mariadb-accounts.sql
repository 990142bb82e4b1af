-- Every account (not roles) with how it authenticates. MariaDB 10.4+: the grants live in
-- mysql.global_priv as JSON; mysql.user is a view showing the first authentication method.
SELECT u.User AS user, u.Host AS host, u.plugin AS plugin,
       u.authentication_string = '' AS empty_password,
       u.authentication_string = 'invalid' AS invalid_password,
       COALESCE(JSON_VALUE(p.Priv, '$.account_locked'), 0) AS locked,
       JSON_EXTRACT(p.Priv, '$.auth_or') AS auth_or
FROM mysql.user AS u
JOIN mysql.global_priv AS p ON p.User = u.User AND p.Host = u.Host
WHERE u.is_role = 'N'
ORDER BY u.User, u.Host
