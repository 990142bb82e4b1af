"""Forms of the people pages."""

from django import forms

from clusters.models import Cluster
from users.models import DatabaseAccount, Person


class PersonField(forms.CharField):
    """A person named by uid (a text box: there may be thousands)."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        try:
            return Person.objects.get(uid__iexact=value.strip())
        except Person.DoesNotExist:
            raise forms.ValidationError(f"No person has the uid {value.strip()!r}.") from None


class PeopleFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search people",
                        help_text="uid, name or mail")  # fmt: skip
    state = forms.ChoiceField(required=False, choices=[("", "all"), *Person.State.choices])


class AccountFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search accounts")
    cluster = forms.ModelChoiceField(
        required=False, queryset=Cluster.objects.all(), empty_label="every cluster"
    )
    kind = forms.ChoiceField(
        required=False, choices=[("", "every kind"), *DatabaseAccount.Kind.choices]
    )
    gone = forms.BooleanField(required=False, label="Include accounts gone from the server")


class LinkAccountForm(forms.Form):
    person = PersonField(max_length=255, label="Person (uid)")


class FunctionalAccountForm(forms.Form):
    owner_person = PersonField(max_length=255, required=False, label="Owning person (uid)")
    owner_team = forms.CharField(max_length=255, required=False, label="Owning team",
                                 help_text="A directory group, e.g. team-billing")  # fmt: skip
    purpose = forms.CharField(max_length=255, label="Purpose")

    def clean(self):
        data = super().clean()
        if not data.get("owner_person") and not data.get("owner_team", "").strip():
            if "owner_person" not in self.errors:
                self.add_error("owner_team", "Name an owning person or team.")
        return data


class ConfirmSyncForm(forms.Form):
    """A held sync is applied only when the DBA types how many people it marks left."""

    count = forms.IntegerField(min_value=0, label="Number of people to mark left")

    def __init__(self, *args, expected: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_count(self):
        count = self.cleaned_data["count"]
        if count != self.expected:
            raise forms.ValidationError(
                f"Type {self.expected}, the number of people this sync marks left."
            )
        return count


class OffboardConfirmForm(forms.Form):
    """The person's uid, typed to confirm an offboarding or its undo."""

    confirmation = forms.CharField(max_length=255, label="Type the person's uid to confirm")


# --- Account lifecycle (issue 6 part 3) ----------------------------------------------------------


class CreateAccountForm(forms.Form):
    """A new login; its password is generated and shown once, never typed here."""

    cluster = forms.ModelChoiceField(queryset=Cluster.objects.all(), empty_label=None)
    name = forms.CharField(
        max_length=255,
        strip=False,
        help_text="Used as it is: quotes, spaces, upper case, unicode are fine.",
    )
    host = forms.CharField(
        max_length=255,
        required=False,
        strip=False,
        help_text="MariaDB/MySQL only: the host pattern (default %).",
    )
    kind = forms.ChoiceField(choices=DatabaseAccount.Kind.choices)
    person = PersonField(
        max_length=255, required=False, label="Person (uid), for a personal account"
    )
    owner_person = PersonField(
        max_length=255, required=False, label="Owner (uid), for a functional account"
    )
    owner_team = forms.CharField(max_length=255, required=False)
    purpose = forms.CharField(max_length=255, required=False)
    valid_until = forms.DateTimeField(
        required=False,
        label="Valid until (UTC, PostgreSQL)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self):
        from users import dbops

        data = super().clean()
        cluster, name = data.get("cluster"), data.get("name")
        if cluster is not None and name is not None:
            try:
                dbops.check_account_name(name, cluster.kind, data.get("host") or "%")
            except dbops.AccountRefused as e:
                self.add_error(e.field if e.field in self.fields else "name", str(e))
        if data.get("kind") == DatabaseAccount.Kind.PERSONAL and not data.get("person"):
            self.add_error("person", "A personal account needs its person.")
        if data.get("kind") == DatabaseAccount.Kind.FUNCTIONAL:
            if not (data.get("owner_person") or data.get("owner_team")):
                self.add_error("owner_team", "A functional account needs an owner or a team.")
            if not data.get("purpose"):
                self.add_error("purpose", "Say what the functional account is for.")
        return data

    def job_params(self) -> dict:
        data = self.cleaned_data
        until = data.get("valid_until")
        return {
            "name": data["name"],
            "host": data.get("host") or "",
            "kind": data["kind"],
            "person": data["person"].uid if data.get("person") else "",
            "owner_person": data["owner_person"].uid if data.get("owner_person") else "",
            "owner_team": data.get("owner_team") or "",
            "purpose": data.get("purpose") or "",
            "valid_until": until.isoformat() if until else "",
        }


class TypedConfirmForm(forms.Form):
    """A destructive action: the account's name typed again, exactly."""

    confirm = forms.CharField(max_length=255, strip=False, label="Type the account name to confirm")

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.account = account

    def clean_confirm(self):
        value = self.cleaned_data["confirm"]
        if value != self.account.name:
            raise forms.ValidationError(f"Type the account name exactly: {self.account.name}")
        return value


class DropAccountForm(TypedConfirmForm):
    reassign_to = forms.CharField(
        max_length=255,
        required=False,
        strip=False,
        label="Reassign its objects to (PostgreSQL role)",
        help_text="Needed when the role owns objects.",
    )


class RoleForm(forms.Form):
    operation = forms.ChoiceField(choices=[("grant", "grant"), ("revoke", "revoke")])
    role = forms.CharField(max_length=255, strip=False, label="Role")


class PrivilegesForm(forms.Form):
    operation = forms.ChoiceField(choices=[("grant", "grant"), ("revoke", "revoke")])
    privileges = forms.MultipleChoiceField(choices=[], widget=forms.CheckboxSelectMultiple)
    database = forms.CharField(max_length=255, strip=False)
    schema = forms.CharField(
        max_length=255,
        strip=False,
        required=False,
        initial="public",
        help_text="PostgreSQL: the schema for USAGE and table privileges.",
    )

    def __init__(self, *args, account, **kwargs):
        from users.actions import lifecycle

        super().__init__(*args, **kwargs)
        choices = (
            lifecycle.PG_PRIVILEGES
            if account.cluster.kind == "postgresql"
            else lifecycle.MYSQL_PRIVILEGES
        )
        self.fields["privileges"].choices = [(p, p) for p in choices]
        if account.cluster.kind != "postgresql":
            del self.fields["schema"]


class ExpiryForm(forms.Form):
    """PostgreSQL: VALID UNTIL (empty clears it). MariaDB: a password expiry mode."""

    until = forms.DateTimeField(
        required=False,
        label="Valid until (UTC; empty: no limit)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    mariadb = forms.ChoiceField(
        required=False,
        label="Password expiry",
        choices=[
            ("never", "never"),
            ("interval", "after a number of days"),
            ("now", "now"),
            ("default", "the server's default"),
        ],
    )
    days = forms.IntegerField(required=False, min_value=1, max_value=65535)

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        if account.cluster.kind == "postgresql":
            del self.fields["mariadb"], self.fields["days"]
        else:
            del self.fields["until"]

    def clean(self):
        data = super().clean()
        if data.get("mariadb") == "interval" and not data.get("days"):
            self.add_error("days", "Give the number of days.")
        return data

    def job_params(self) -> dict:
        data = self.cleaned_data
        if "until" in self.fields:
            until = data.get("until")
            return {"until": until.isoformat() if until else ""}
        return {"mariadb": data.get("mariadb") or "never", "days": data.get("days")}
