-- What one role owns or holds privileges on, over the whole cluster, from the shared catalog
-- pg_shdepend (no need to visit each database): one row per database (empty for shared
-- objects: databases, tablespaces), catalog and kind of dependency (o: owner, a: privileges,
-- i: initial privileges, r: policy), with how many objects, and the names of owned databases.
SELECT coalesce(d.datname, '') AS database,
       coalesce(d.datallowconn, true) AS connectable,
       s.classid::regclass::text AS catalog,
       s.deptype AS deptype,
       count(*) AS objects,
       coalesce(string_agg(od.datname, ', ' ORDER BY od.datname), '') AS names
FROM pg_shdepend s
LEFT JOIN pg_database d ON d.oid = s.dbid
LEFT JOIN pg_database od ON s.classid = 'pg_database'::regclass AND od.oid = s.objid
WHERE s.refclassid = 'pg_authid'::regclass
  AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
GROUP BY 1, 2, 3, 4
ORDER BY 1, 3, 4
