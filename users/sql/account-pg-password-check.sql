-- Whether the role's stored password is the verifier the console just set (read back after a
-- create or a rotation). The verifier is a bound parameter: the audit entry records the
-- placeholder, never the value. pg_authid is readable by superusers only; the caller treats
-- "permission denied" as "not verifiable here".
SELECT a.rolpassword = %(verifier)s AS matches
FROM pg_authid a
WHERE a.rolname = %(role)s
