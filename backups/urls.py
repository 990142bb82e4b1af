"""URLs of the backups app under /backups/: each area of backups/views/ lists its own."""

from backups.views import assurance, catalogs, policies, reports, restore

app_name = "backups"
urlpatterns = [
    *policies.urlpatterns,
    *restore.urlpatterns,
    *assurance.urlpatterns,
    *reports.urlpatterns,
    *catalogs.urlpatterns,
]
