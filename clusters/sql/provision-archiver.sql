-- Provisioning: is WAL archiving working? Something archived, and no failure since the last
-- success (a failure newer than the last archived file, or a failure and no success at all).
SELECT archived_count,
       last_archived_wal,
       last_failed_wal,
       coalesce(last_failed_time > last_archived_time, last_failed_time IS NOT NULL) AS failing
FROM pg_stat_archiver
