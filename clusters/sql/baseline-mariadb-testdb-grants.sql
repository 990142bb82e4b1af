-- Database-level grants on `test` and on the test-underscore pattern mysql_install_db grants
-- (both given as parameters, so the client library escapes the backslash for the sql_mode).
SELECT Host AS host, Db AS db, User AS user FROM mysql.db WHERE Db IN (%s, %s) ORDER BY Db, User, Host
