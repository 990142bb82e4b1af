from django.urls import path

from users import views

app_name = "users"
urlpatterns = [
    path("", views.person_list, name="person_list"),
    path("sync/", views.sync_start, name="sync_start"),
    path("syncs/", views.sync_list, name="sync_list"),
    path("syncs/<int:pk>/", views.sync_detail, name="sync_detail"),
    path("syncs/<int:pk>/confirm/", views.sync_confirm, name="sync_confirm"),
    path("syncs/<int:pk>/dismiss/", views.sync_dismiss, name="sync_dismiss"),
    path("accounts/", views.account_list, name="account_list"),
    path("accounts/import/", views.accounts_import, name="accounts_import"),
    path("accounts/<int:pk>/", views.account_detail, name="account_detail"),
    path("accounts/<int:pk>/link/", views.account_link, name="account_link"),
    path("accounts/<int:pk>/functional/", views.account_functional, name="account_functional"),
    path("accounts/<int:pk>/unclassify/", views.account_unclassify, name="account_unclassify"),
    path("offboardings/", views.offboarding_list, name="offboarding_list"),
    # Account lifecycle (issue 6 part 3)
    path("accounts/new/", views.account_create, name="account_create"),
    path("accounts/<int:pk>/manage/", views.account_lifecycle, name="account_lifecycle"),
    path("accounts/<int:pk>/lock/", views.account_lock, name="account_lock"),
    path("accounts/<int:pk>/unlock/", views.account_unlock, name="account_unlock"),
    path("accounts/<int:pk>/drop/", views.account_drop, name="account_drop"),
    path("accounts/<int:pk>/role/", views.account_role, name="account_role"),
    path("accounts/<int:pk>/privileges/", views.account_privileges, name="account_privileges"),
    path("accounts/<int:pk>/expiry/", views.account_expiry, name="account_expiry"),
    path("accounts/<int:pk>/rotate/", views.account_rotate, name="account_rotate"),
    path("accounts/password/<int:pk>/", views.account_password, name="account_password"),
    path("<str:uid>/", views.person_detail, name="person_detail"),
    path("<str:uid>/offboarding/", views.person_offboarding, name="person_offboarding"),
    path("<str:uid>/offboard/", views.person_offboard, name="person_offboard"),
    path("<str:uid>/offboard/undo/", views.person_offboard_undo, name="person_offboard_undo"),
    path(
        "<str:uid>/offboardings/<int:pk>/evidence.csv",
        views.offboarding_evidence,
        {"fmt": "csv"},
        name="offboarding_evidence_csv",
    ),
    path(
        "<str:uid>/offboardings/<int:pk>/evidence.pdf",
        views.offboarding_evidence,
        {"fmt": "pdf"},
        name="offboarding_evidence_pdf",
    ),
]
