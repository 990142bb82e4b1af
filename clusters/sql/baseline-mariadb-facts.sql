SELECT @@local_infile AS local_infile, @@pid_file AS pid_file, CURRENT_USER() AS current_account,
       @@version AS version
