DELETE FROM mysql.db WHERE Db IN (%s, %s)
