"""Pages of the backups app: restore (see backups/views/__init__.py)."""

urlpatterns: list = []
