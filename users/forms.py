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
