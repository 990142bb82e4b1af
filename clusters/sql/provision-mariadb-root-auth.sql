-- root's accounts and how each authenticates (MariaDB 10.4+): the first method in mysql.user's
-- plugin column, the further ones (IDENTIFIED VIA a OR b) in global_priv's auth_or list.
SELECT u.Host AS host, u.plugin AS plugin, JSON_EXTRACT(p.Priv, '$.auth_or') AS auth_or
FROM mysql.user AS u
JOIN mysql.global_priv AS p ON p.User = u.User AND p.Host = u.Host
WHERE u.User = 'root' AND u.is_role = 'N'
ORDER BY u.Host
