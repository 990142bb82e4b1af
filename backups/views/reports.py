"""Pages of the backups app: reports (see backups/views/__init__.py)."""

urlpatterns: list = []
