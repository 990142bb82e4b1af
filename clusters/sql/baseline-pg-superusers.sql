SELECT rolname AS name, rolcanlogin AS can_login
FROM pg_roles WHERE rolsuper AND rolname <> 'postgres' ORDER BY rolname
