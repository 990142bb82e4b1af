-- The privileges granted directly to one role in the current database (read back after a grant
-- or a revoke): on the database itself, on one schema, and on that schema's tables (with how
-- many tables have each privilege, out of how many the schema holds). Grants to PUBLIC and
-- through membership are not the role's own and are left out.
WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s),
     s AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = %(schema)s),
     t AS (SELECT c.oid, c.relacl FROM pg_class c, s
           WHERE c.relnamespace = s.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))
SELECT 'database' AS kind, a.privilege_type AS privilege, 1 AS objects, 1 AS total
FROM pg_database d, aclexplode(d.datacl) a, r
WHERE d.datname = current_database() AND a.grantee = r.oid
UNION ALL
SELECT 'schema', a.privilege_type, 1, 1
FROM s JOIN pg_namespace n ON n.oid = s.oid, aclexplode(n.nspacl) a, r
WHERE a.grantee = r.oid
UNION ALL
SELECT 'tables', a.privilege_type, count(*), (SELECT count(*) FROM t)
FROM t, aclexplode(t.relacl) a, r
WHERE a.grantee = r.oid
GROUP BY a.privilege_type
ORDER BY 1, 2
