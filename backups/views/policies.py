"""Pages of the backups app: policies (see backups/views/__init__.py)."""

urlpatterns: list = []
