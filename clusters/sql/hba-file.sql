-- The pg_hba.conf the server reads (the hba_file setting), asked at each use rather than taken
-- from discovery, so a moved file is never written blind.
SELECT current_setting('hba_file') AS hba_file
