"""Actions of the clusters app (state changes with their audit entries), one module per area,
re-exported here: inventory.py (registering clusters and hosts)."""

from clusters.actions.inventory import (
    NODE_FACTS,
    NodeSpec,
    RegistrationRefused,
    register_cluster,
    register_host,
)

__all__ = ["NODE_FACTS", "NodeSpec", "RegistrationRefused", "register_cluster", "register_host"]
