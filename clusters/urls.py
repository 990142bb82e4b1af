from django.urls import path

from clusters import views

app_name = "clusters"
urlpatterns = [
    path("", views.fleet, name="fleet"),
    path("inventory/", views.cluster_list, name="cluster_list"),
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

# The fleet dashboard ("" above), the cluster page and the series of their charts.
urlpatterns += [
    path("<int:pk>/", views.cluster_detail, name="cluster_detail"),
    path("series/", views.series_data, name="series"),
]

# Server settings of a node: the list, one parameter's page (change, reset, history).
urlpatterns += [
    path("nodes/<int:pk>/settings/", views.node_settings, name="node_settings"),
    path("nodes/<int:pk>/settings/<str:name>/", views.node_setting, name="node_setting"),
]

# The security baseline: the fleet report and its CSV, a server's checks, checks and fixes.
urlpatterns += [
    path("baseline/", views.baseline_report, name="baseline_report"),
    path("baseline/export.csv", views.baseline_export, name="baseline_export"),
    path("baseline/run/", views.baseline_run, name="baseline_run_all"),
    path("baseline/nodes/<int:pk>/", views.baseline_node, name="baseline_node"),
    path("baseline/nodes/<int:pk>/run/", views.baseline_run, name="baseline_run"),
    path("baseline/nodes/<int:pk>/fix/", views.baseline_fix, name="baseline_fix"),
    path("baseline/nodes/<int:pk>/fix-all/", views.baseline_fix_all, name="baseline_fix_all"),
]

# pg_hba.conf of a PostgreSQL cluster: rules, preview, apply, versions and rollback.
urlpatterns += [
    path("<int:pk>/hba/", views.hba_detail, name="hba_detail"),
    path("<int:pk>/hba/rules/new/", views.hba_rule_edit, name="hba_rule_new"),
    path("<int:pk>/hba/rules/<int:rule_pk>/", views.hba_rule_edit, name="hba_rule_edit"),
    path("<int:pk>/hba/rules/<int:rule_pk>/move/", views.hba_rule_move, name="hba_rule_move"),
    path("<int:pk>/hba/rules/<int:rule_pk>/delete/", views.hba_rule_delete, name="hba_rule_delete"),
    path("<int:pk>/hba/preview/", views.hba_preview, name="hba_preview"),
    path("<int:pk>/hba/apply/", views.hba_apply, name="hba_apply"),
    path("<int:pk>/hba/read/", views.hba_read, name="hba_read"),
    path("<int:pk>/hba/versions/<int:number>/", views.hba_version, name="hba_version"),
    path("<int:pk>/hba/versions/<int:number>/rollback/", views.hba_rollback, name="hba_rollback"),
]

# Alerts: open alerts, history, rules, maintenance windows.
urlpatterns += [
    path("alerts/", views.alert_list, name="alert_list"),
    path("alerts/history/", views.alert_history, name="alert_history"),
    path("alerts/rules/", views.alert_rules, name="alert_rules"),
    path("alerts/rules/<int:pk>/", views.alert_rule_edit, name="alert_rule_edit"),
    path("alerts/maintenance/", views.maintenance_list, name="maintenance_list"),
    path("alerts/maintenance/new/", views.maintenance_create, name="maintenance_create"),
    path("alerts/maintenance/<int:pk>/end/", views.maintenance_end, name="maintenance_end"),
]

# Provisioning MariaDB on a bare host (clusters/views/provision_mariadb.py).
urlpatterns += [
    path("provision/mariadb/", views.provision_mariadb, name="provision_mariadb"),
    path(
        "provision/mariadb/<int:pk>/rerun/",
        views.provision_mariadb_rerun,
        name="provision_mariadb_rerun",
    ),
]

# PostgreSQL provisioning: a cluster on a bare host, a standby, the re-run of a failed job.
urlpatterns += [
    path("provision/", views.provision_start, name="provision_start"),
    path("<int:pk>/standby/add/", views.standby_add, name="standby_add"),
    path("provision/jobs/<int:pk>/rerun/", views.provision_rerun, name="provision_rerun"),
]

# High availability: an operation's precheck page and its typed confirmation (clusters/views/ha.py).
urlpatterns += [
    path("<int:pk>/ha/<str:operation>/", views.ha_operation, name="ha_operation"),
    path("<int:pk>/ha-setup/", views.ha_setup, name="ha_setup"),
]
