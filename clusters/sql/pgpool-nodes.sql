-- pgpool-II's view of its backends: status, pg_status, lb_weight, role, pg_role, select_cnt,
-- load_balance_node, replication_delay (bytes in 4.3), replication_state and sync state.
SHOW POOL_NODES
