"""The API modules of the clusters app; each registers its viewsets on clusters.api.router."""

from clusters.api import (
    hba,  # noqa: E402, F401  (pg_hba.conf)
    monitoring,  # noqa: E402, F401  (clusters, nodes, samples, alerts)
    settings,  # noqa: E402, F401  (server settings)
)
