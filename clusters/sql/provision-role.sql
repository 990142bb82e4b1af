-- Provisioning: the replication role, if it exists: (can replicate and log in). Param: role.
SELECT rolreplication AND rolcanlogin AS usable
FROM pg_roles
WHERE rolname = %(role)s
