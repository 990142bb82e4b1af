"""Pages of the clusters app, one module per area, re-exported here for clusters.urls:
inventory.py (the inventory list, registration, rediscovery, the node page and its log viewer),
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
    baseline_node,
    baseline_report,
    baseline_run,
)
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

__all__ = [
    "alert_history",
    "alert_list",
    "alert_rule_edit",
    "alert_rules",
    "maintenance_create",
    "maintenance_end",
    "maintenance_list",
    "baseline_export",
    "baseline_fix",
    "baseline_node",
    "baseline_report",
    "baseline_run",
    "cluster_list",
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
    "node_detail",
    "node_log",
    "registration_confirm",
    "registration_detail",
    "registration_register",
    "registration_start",
]
