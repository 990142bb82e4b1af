SELECT @@version AS version, @@datadir AS data_directory, @@port AS port,
       @@log_error AS log_error, @@read_only AS read_only, @@hostname AS hostname
