-- The server's WAL segment size in bytes (16 MiB unless initdb was told otherwise): segment
-- names count in units of it, so the archive continuity walk needs it.
SELECT pg_size_bytes(current_setting('wal_segment_size')) AS wal_segment_size
