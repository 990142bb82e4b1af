from django.contrib import admin
from django.urls import include, path

from clusters.api.monitoring import MetricsView
from console import auth, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("audit/", views.audit_list, name="audit_list"),
    path("audit/export.<str:fmt>", views.audit_export, name="audit_export"),
    path("audit/verify/", views.audit_verify, name="audit_verify"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/live/", views.job_live, name="job_live"),
    path("clusters/", include("clusters.urls")),
    path("people/", include("users.urls")),
    path("backups/", include("backups.urls")),
    path("api/", include("console.api")),
    path("api/", include("clusters.api")),
    path("api/", include("users.api")),
    path("admin/", admin.site.urls),
]
