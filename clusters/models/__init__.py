"""The clusters app's models: the inventory (inventory.py), what monitoring reads (monitoring.py),
alerting (alerts.py).

Split NetBox style: every model is re-exported here, so `from clusters.models import Node` works.
"""

from clusters.models.alerts import Alert, AlertRule, MaintenanceWindow, Severity
from clusters.models.baseline import BaselineResult, BaselineRun, BaselineStatus
from clusters.models.ha import FencedNode, HaSetup
from clusters.models.hba import (
    HbaLiveFile,
    HbaNodeVersion,
    HbaRule,
    HbaRuleSet,
    HbaVersion,
)
from clusters.models.inventory import (
    Cluster,
    ClusterDrift,
    Environment,
    Node,
    PendingRegistration,
)
from clusters.models.monitoring import ClusterStatus, NodeStatus, Sample, SampleRollup
from clusters.models.provision import PgProvision
from clusters.models.settings import SettingChange

__all__ = [
    "Alert",
    "AlertRule",
    "BaselineResult",
    "BaselineRun",
    "BaselineStatus",
    "MaintenanceWindow",
    "Severity",
    "Cluster",
    "ClusterDrift",
    "ClusterStatus",
    "FencedNode",
    "HaSetup",
    "Environment",
    "HbaLiveFile",
    "HbaNodeVersion",
    "HbaRule",
    "HbaRuleSet",
    "HbaVersion",
    "Node",
    "NodeStatus",
    "PendingRegistration",
    "PgProvision",
    "Sample",
    "SampleRollup",
    "SettingChange",
]
