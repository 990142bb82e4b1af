from django.urls import path

from clusters import views

app_name = "clusters"
urlpatterns = [
    path("", views.cluster_list, name="cluster_list"),
    path("register/", views.registration_start, name="registration_start"),
    path("register/<int:pk>/", views.registration_detail, name="registration_detail"),
    path("register/<int:pk>/confirm/", views.registration_confirm, name="registration_confirm"),
    path("register/<int:pk>/register/", views.registration_register, name="registration_register"),
    path("<int:pk>/rediscover/", views.cluster_rediscover, name="cluster_rediscover"),
]

# The node page and its server log viewer.
urlpatterns += [
    path("nodes/<int:pk>/", views.node_detail, name="node_detail"),
    path("nodes/<int:pk>/log/", views.node_log, name="node_log"),
]

# The security baseline: the fleet report and its CSV, a server's checks, checks and fixes.
urlpatterns += [
    path("baseline/", views.baseline_report, name="baseline_report"),
    path("baseline/export.csv", views.baseline_export, name="baseline_export"),
    path("baseline/run/", views.baseline_run, name="baseline_run_all"),
    path("baseline/nodes/<int:pk>/", views.baseline_node, name="baseline_node"),
    path("baseline/nodes/<int:pk>/run/", views.baseline_run, name="baseline_run"),
    path("baseline/nodes/<int:pk>/fix/", views.baseline_fix, name="baseline_fix"),
]
