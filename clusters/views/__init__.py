"""Pages of the clusters app, one module per area, re-exported here for clusters.urls:
inventory.py (the inventory list, registration, rediscovery, the node page and its log viewer).
"""

from clusters.views.baseline import (
    baseline_export,
    baseline_fix,
    baseline_node,
    baseline_report,
    baseline_run,
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
    "baseline_export",
    "baseline_fix",
    "baseline_node",
    "baseline_report",
    "baseline_run",
    "cluster_list",
    "cluster_rediscover",
    "node_detail",
    "node_log",
    "registration_confirm",
    "registration_detail",
    "registration_register",
    "registration_start",
]
