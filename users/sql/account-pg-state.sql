-- One PostgreSQL role as the lifecycle actions see it: whether it exists (no row: it does not),
-- can log in, is a superuser, its VALID UNTIL (NULL for none or infinity) and whether it has
-- passed by the server's clock, the roles it is a member of, and its sessions on this server.
-- pg_roles, not pg_authid: the password column stays masked.
SELECT r.rolcanlogin AS can_login,
       r.rolsuper AS superuser,
       CASE WHEN r.rolvaliduntil IN ('infinity', '-infinity') THEN NULL
            ELSE r.rolvaliduntil END AS valid_until,
       coalesce(r.rolvaliduntil < now(), false) AS expired,
       ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY g.rolname) AS member_of,
       (SELECT count(*) FROM pg_stat_activity a
        WHERE a.usename = r.rolname AND a.pid <> pg_backend_pid()) AS sessions
FROM pg_roles r
WHERE r.rolname = %(role)s
