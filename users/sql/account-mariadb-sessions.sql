-- The client threads of one MariaDB user name connected from a host its account's host pattern
-- matches (the pattern is a LIKE pattern, its wildcards as the server reads them), the console's own
-- thread excepted. The processlist does not say which account a thread authenticated as, so a
-- user with several host patterns that match the same client is a documented approximation.
-- Parameters: user, host pattern. A MySQL run_sql template.
SELECT p.ID AS id, p.HOST AS client
FROM information_schema.PROCESSLIST p
WHERE p.USER = %s AND SUBSTRING_INDEX(p.HOST, ':', 1) LIKE %s AND p.ID <> CONNECTION_ID()
ORDER BY p.ID
