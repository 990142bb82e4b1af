"""The API modules of the clusters app; each registers its viewsets on clusters.api.router."""
