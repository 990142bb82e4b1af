-- Every role of a PostgreSQL cluster but the built-in pg_* ones, with what the account
-- inventory shows: whether it can log in, superuser, VALID UNTIL (and whether it has passed, by
-- the server's clock), the roles it is a member of, its other attributes and its comment.
-- pg_roles, not pg_authid: readable by any role, and the password column stays masked.
-- PostgreSQL records no time of the last password change.
SELECT r.rolname AS name,
       r.rolcanlogin AS can_login,
       r.rolsuper AS superuser,
       CASE WHEN r.rolvaliduntil IN ('infinity', '-infinity') THEN NULL
            ELSE r.rolvaliduntil END AS valid_until,
       coalesce(r.rolvaliduntil < now(), false) AS expired,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY g.rolname) AS member_of,
       r.rolcreaterole AS createrole,
       r.rolcreatedb AS createdb,
       r.rolreplication AS replication,
       r.rolbypassrls AS bypassrls,
       r.rolconnlimit AS connlimit,
       coalesce(shobj_description(r.oid, 'pg_authid'), '') AS comment
FROM pg_roles r
WHERE r.rolname !~ '^pg_'
ORDER BY r.rolname
