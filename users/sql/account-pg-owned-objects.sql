-- The objects one role owns in the current database (the report made before a drop): schemas,
-- relations, functions and procedures, types and default privileges, at most 200 of them.
WITH r AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT kind, name FROM (
    SELECT 'schema' AS kind, quote_ident(n.nspname) AS name
    FROM pg_namespace n, r WHERE n.nspowner = r.oid
    UNION ALL
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                WHEN 'f' THEN 'foreign table' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index'
                ELSE 'relation' END,
           c.oid::regclass::text
    FROM pg_class c, r WHERE c.relowner = r.oid AND c.relkind <> 't'
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                ELSE 'function' END, p.oid::regprocedure::text
    FROM pg_proc p, r WHERE p.proowner = r.oid
    UNION ALL
    SELECT 'type', t.oid::regtype::text
    FROM pg_type t, r
    WHERE t.typowner = r.oid AND t.typtype IN ('b', 'd', 'e', 'r', 'm') AND t.typelem = 0
    UNION ALL
    SELECT 'default privileges', coalesce(quote_ident(n.nspname), '(all schemas)')
    FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace, r
    WHERE a.defaclrole = r.oid
) owned
ORDER BY kind, name
LIMIT 200
