-- The console's admin account on a server being provisioned. Run by OS root through the
-- server's socket (root@localhost authenticates by unix_socket) with the mariadb client, before
-- any account can log in over the network. Not a run_sql template: {account} is written by
-- quote_mysql_account, {hash} is the mysql_native_password hash the console computed ('*' and
-- 40 upper-case hex digits, checked), never the password. ALTER USER makes a re-run converge on
-- the stored password.
CREATE USER IF NOT EXISTS {account} IDENTIFIED BY PASSWORD '{hash}';
ALTER USER {account} IDENTIFIED BY PASSWORD '{hash}';
GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;
