"""API of the users app, read-only: /api/people/, /api/accounts/, /api/directory-syncs/ (see
users/api/__init__.py).

Behind the same gates as the pages (users.access). Lists are paged by cursor; filters are
validated by small forms, a bad value is a 400 naming the parameter.
"""

from django import forms
from django.db.models import Q
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.routers import SimpleRouter

from users import access
from users.models import DatabaseAccount, DirectorySync, Person


def _paging(ordering: str) -> type[CursorPagination]:
    attrs = {"ordering": ordering, "page_size": 100, "page_size_query_param": "page_size",
             "max_page_size": 1000}  # fmt: skip
    return type("Pagination", (CursorPagination,), attrs)


class AccountSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    cluster_kind = serializers.CharField(source="cluster.kind")
    node = serializers.CharField(source="node.name", default=None)
    person = serializers.CharField(source="person.uid", default=None)
    owner_person = serializers.CharField(source="owner_person.uid", default=None)
    can_login = serializers.BooleanField(read_only=True)

    class Meta:
        model = DatabaseAccount
        fields = [
            "id", "cluster", "cluster_kind", "node", "name", "host", "can_login", "locked",
            "expired", "superuser", "member_of", "valid_until", "password_changed_at", "plugin",
            "attributes", "comment", "kind", "linked_by", "person", "owner_person", "owner_team",
            "purpose", "first_seen", "last_seen", "gone_at",
        ]  # fmt: skip
        read_only_fields = fields


class PersonSerializer(serializers.ModelSerializer):
    class Meta:
        model = Person
        fields = ["id", "uid", "name", "mail", "groups", "state", "left_at", "left_reason",
                  "first_seen", "last_seen"]  # fmt: skip
        read_only_fields = fields


class PersonDetailSerializer(PersonSerializer):
    accounts = serializers.SerializerMethodField()
    owned_accounts = serializers.SerializerMethodField()

    class Meta(PersonSerializer.Meta):
        fields = [*PersonSerializer.Meta.fields, "accounts", "owned_accounts"]
        read_only_fields = fields

    def _accounts(self, **filters):
        user = self.context["request"].user
        return AccountSerializer(access.accounts_for_user(user).filter(**filters), many=True).data

    def get_accounts(self, person) -> list[dict]:
        return self._accounts(person=person)

    def get_owned_accounts(self, person) -> list[dict]:
        return self._accounts(owner_person=person)


class DirectorySyncSerializer(serializers.ModelSerializer):
    class Meta:
        model = DirectorySync
        fields = ["id", "started", "finished", "status", "hold_kind", "reason", "source", "seen",
                  "created", "updated", "left", "returned", "would_leave", "resolved_by_name",
                  "resolved_at"]  # fmt: skip
        read_only_fields = fields


class PersonFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200)
    state = forms.ChoiceField(required=False, choices=[("", "any"), *Person.State.choices])


class AccountFilterForm(forms.Form):
    cluster = forms.IntegerField(required=False, min_value=1, help_text="Cluster id.")
    kind = forms.ChoiceField(required=False, choices=[("", "any"), *DatabaseAccount.Kind.choices])
    person = forms.CharField(required=False, max_length=255, help_text="Person uid.")
    gone = forms.BooleanField(required=False)


def _filtered(form_class, request):
    form = form_class(request.query_params)
    if not form.is_valid():
        raise ValidationError(form.errors)
    return form.cleaned_data


class PersonViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Person.objects.none()  # for the schema; get_queryset asks the gate
    lookup_field = "uid"
    lookup_value_regex = "[^/]+"
    pagination_class = _paging("uid")

    def get_serializer_class(self):
        return PersonDetailSerializer if self.action == "retrieve" else PersonSerializer

    def get_queryset(self):
        people = access.people_for_user(self.request.user)
        data = _filtered(PersonFilterForm, self.request)
        if data["q"]:
            q = data["q"]
            people = people.filter(
                Q(uid__icontains=q) | Q(name__icontains=q) | Q(mail__icontains=q)
            )
        if data["state"]:
            people = people.filter(state=data["state"])
        return people


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DatabaseAccount.objects.none()  # for the schema; get_queryset asks the gate
    serializer_class = AccountSerializer
    pagination_class = _paging("id")

    def get_queryset(self):
        accounts = access.accounts_for_user(self.request.user)
        if self.action == "retrieve":
            return accounts
        data = _filtered(AccountFilterForm, self.request)
        if data["cluster"]:
            accounts = accounts.filter(cluster_id=data["cluster"])
        if data["kind"]:
            accounts = accounts.filter(kind=data["kind"])
        if data["person"]:
            accounts = accounts.filter(person__uid=data["person"])
        if not data["gone"]:
            accounts = accounts.filter(gone_at__isnull=True)
        return accounts


class DirectorySyncViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = DirectorySync.objects.none()  # for the schema; get_queryset asks the gate
    serializer_class = DirectorySyncSerializer
    pagination_class = _paging("-id")

    def get_queryset(self):
        return access.syncs_for_user(self.request.user)


router = SimpleRouter()
router.register("people", PersonViewSet, basename="person")
router.register("accounts", AccountViewSet, basename="account")
router.register("directory-syncs", DirectorySyncViewSet, basename="directorysync")
