"""REST API of the clusters app, mounted at /api/ beside console.api: one module per area
registers its viewsets on `router` (imported at the bottom so each module can use it)."""

from rest_framework.routers import SimpleRouter

router = SimpleRouter()

# Each area's module registers its viewsets on `router` when imported.
from clusters.api import _areas  # noqa: E402, F401

urlpatterns = router.urls
