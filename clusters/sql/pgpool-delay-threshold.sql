-- pgpool-II's delay_threshold (bytes; 0: no delay check), read by the collector now and then.
PGPOOL SHOW delay_threshold
