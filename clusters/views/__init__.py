"""Pages of the clusters app, one module per area, re-exported here for clusters.urls:
inventory.py (the inventory list, registration, rediscovery, the node page and its log viewer),
dashboard.py (the fleet dashboard, the cluster page, the series of their charts),
alerts.py (open alerts, history, rules, maintenance windows).
"""

from clusters.views.alerts import (
    alert_history,
    alert_list,
    alert_rule_edit,
    alert_rules,
    maintenance_create,
    maintenance_end,
    maintenance_list,
)
from clusters.views.baseline import (
    baseline_export,
    baseline_fix,
    baseline_fix_all,
    baseline_node,
    baseline_report,
    baseline_run,
)
from clusters.views.dashboard import cluster_detail, fleet, series_data
from clusters.views.ha import ha_operation, ha_setup
from clusters.views.hba import (
    hba_apply,
    hba_detail,
    hba_preview,
    hba_read,
    hba_rollback,
    hba_rule_delete,
    hba_rule_edit,
    hba_rule_move,
    hba_version,
)
from clusters.views.inventory import (
    cluster_list,
    cluster_rediscover,
    node_detail,
    node_log,
    registration_confirm,
    registration_detail,
    registration_register,
    registration_start,
)
from clusters.views.provision import provision_rerun, provision_start, standby_add
from clusters.views.provision_mariadb import provision_mariadb, provision_mariadb_rerun
from clusters.views.settings import node_setting, node_settings

__all__ = [
    "baseline_export",
    "baseline_fix",
    "baseline_fix_all",
    "baseline_node",
    "baseline_report",
    "baseline_run",
    "alert_history",
    "alert_list",
    "alert_rule_edit",
    "alert_rules",
    "maintenance_create",
    "maintenance_end",
    "maintenance_list",
    "cluster_detail",
    "cluster_list",
    "ha_operation",
    "ha_setup",
    "hba_apply",
    "hba_detail",
    "hba_preview",
    "hba_read",
    "hba_rollback",
    "hba_rule_delete",
    "hba_rule_edit",
    "hba_rule_move",
    "hba_version",
    "cluster_rediscover",
    "fleet",
    "node_detail",
    "node_log",
    "node_setting",
    "node_settings",
    "provision_mariadb",
    "provision_mariadb_rerun",
    "registration_confirm",
    "registration_detail",
    "registration_register",
    "registration_start",
    "series_data",
    "provision_rerun",
    "provision_start",
    "standby_add",
]
