-- Roles whose stored password is still an MD5 hash (needs superuser: pg_authid).
SELECT count(*) AS md5_roles FROM pg_authid WHERE rolpassword LIKE 'md5%'
