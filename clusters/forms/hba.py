"""Forms of the pg_hba.conf pages: one rule, and the typed confirmation of apply and rollback."""

from django import forms

from clusters import hba, hba_validate
from clusters.models.hba import Target


def masked_options(rule: hba.Rule) -> str:
    """The options as typed in the form, secret values replaced by the mask."""
    return " ".join(
        hba.render_option(k, hba.MASK if k in hba.SECRET_OPTIONS and v else v)
        for k, v in rule.options
    )


def unmask(options: tuple, previous: hba.Rule | None) -> tuple:
    """Options from the form with each masked secret given its stored value back."""
    kept = dict(previous.options) if previous is not None else {}
    return tuple(
        (k, kept.get(k, v) if k in hba.SECRET_OPTIONS and v == hba.MASK else v) for k, v in options
    )


class HbaRuleForm(forms.Form):
    """One pg_hba.conf rule. Every field is checked by clusters.hba_validate.validate, and each
    problem is shown on the field it concerns; nothing is saved while one remains."""

    target = forms.ChoiceField(choices=Target.choices, initial=Target.BOTH, label="Applies to")
    conn_type = forms.ChoiceField(
        choices=[(t, t) for t in hba.CONN_TYPES], initial="host", label="Connection type"
    )
    database = forms.CharField(
        max_length=1000, initial="all", label="Databases",
        help_text='all, sameuser, samerole, replication, names, @file; a comma list ("my db" '
        "quoted)",
    )  # fmt: skip
    user = forms.CharField(
        max_length=1000, initial="all", label="Users",
        help_text="all, names, +group, @file; a comma list",
    )  # fmt: skip
    address = forms.CharField(
        max_length=300, required=False,
        help_text="CIDR (10.0.0.0/8), IP address with a netmask, host name (.example.org), all, "
        "samehost, samenet; empty for local",
    )  # fmt: skip
    netmask = forms.CharField(
        max_length=64, required=False, help_text="Only with an IP address written without /bits"
    )
    method = forms.ChoiceField(choices=[(m, m) for m in hba.METHODS], initial="scram-sha-256")
    options = forms.CharField(
        max_length=2000, required=False,
        help_text='name=value pairs separated by spaces, e.g. ldapserver=ldap.example.org '
        'ldapbasedn="dc=example,dc=org"; secret values are shown masked and kept as stored',
    )  # fmt: skip
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                              max_length=2000)  # fmt: skip

    def __init__(self, *args, previous: hba.Rule | None = None, **kwargs):
        self.previous = previous
        if previous is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "target": previous.target, "conn_type": previous.conn_type,
                "database": previous.database, "user": previous.user,
                "address": previous.address, "netmask": previous.netmask,
                "method": previous.method, "options": masked_options(previous),
                "comment": previous.comment,
            }  # fmt: skip
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            options = unmask(hba.parse_options(data["options"]), self.previous)
        except hba.FieldError as e:
            self.add_error("options", f"Options: {e}.")
            return data
        rule = hba.Rule(
            conn_type=data["conn_type"], database=data["database"], user=data["user"],
            address=data["address"], netmask=data["netmask"], method=data["method"],
            options=options, comment=data["comment"], target=data["target"],
        )  # fmt: skip
        for name, messages in hba_validate.validate(rule).items():
            self.add_error(name if name in self.fields else None, " ".join(messages))
        if not self.errors:
            self.cleaned_data["rule"] = rule
        return self.cleaned_data


class ConfirmForm(forms.Form):
    """Typed confirmation: the cluster's name."""

    confirm = forms.CharField(max_length=64, label="Type the cluster's name to confirm")

    def __init__(self, *args, cluster, **kwargs):
        self.cluster = cluster
        super().__init__(*args, **kwargs)

    def clean_confirm(self):
        value = self.cleaned_data["confirm"]
        if value != self.cluster.name:
            raise forms.ValidationError(f"Type {self.cluster.name} exactly to confirm.")
        return value
