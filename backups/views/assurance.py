"""Pages of the backups app: assurance (see backups/views/__init__.py)."""

urlpatterns: list = []
