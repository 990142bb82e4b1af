"""The MariaDB provisioning form: which bare host, what to build there, the admin account."""

from django import forms

from clusters.models import Node


class MariadbProvisionForm(forms.Form):
    """Plain fields and the admin password. The action (request_mariadb_provision) checks every
    value again and names the field it refuses; the view puts that message on the field."""

    host = forms.ModelChoiceField(
        queryset=Node.objects.none(), label="Bare host",
        help_text="A host registered without a cluster (sshd only); its host key is confirmed.",
    )  # fmt: skip
    name = forms.RegexField(
        regex=r"^[a-z][a-z0-9-]{0,40}$", max_length=41, label="Cluster name",
        help_text="Lower-case letters, digits and '-'. The server is registered as "
        "<name>-<host>.",
        error_messages={"invalid": "Lower-case letters, digits and '-', starting with a letter."},
    )  # fmt: skip
    environment = forms.SlugField(max_length=64, initial="production")
    bind_address = forms.CharField(
        max_length=45, required=False, label="Interface address (bind-address)",
        help_text="Empty: the host's address. Or 0.0.0.0 for every interface.",
    )  # fmt: skip
    port = forms.IntegerField(min_value=1, max_value=65535, initial=3306)
    directory = forms.CharField(
        max_length=200, required=False, label="Base directory",
        help_text="Holds my.cnf, data/, run/, log/ and files/. Empty: /var/lib/mariadb-<name>.",
    )  # fmt: skip
    admin_user = forms.CharField(max_length=80, initial="dba_admin", label="Admin user")
    admin_host = forms.CharField(
        max_length=255, initial="%", label="Admin connects from",
        help_text="Host or pattern of the admin account (the console must match it).",
    )  # fmt: skip
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), required=False,
        label="Admin password", strip=False,
        help_text="Stored encrypted, never shown. Empty: the console generates one.",
    )  # fmt: skip
    password_again = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), required=False,
        label="Admin password again", strip=False,
    )  # fmt: skip
    service_user = forms.CharField(max_length=32, initial="mysql", label="Service user")
    package = forms.CharField(
        max_length=100, required=False, label="Package",
        help_text="Empty: mariadb-server (Debian) or dev-db/mariadb (Gentoo).",
    )  # fmt: skip

    def __init__(self, *args, hosts=None, **kwargs):
        super().__init__(*args, **kwargs)
        if hosts is not None:
            self.fields["host"].queryset = hosts

    def clean(self):
        data = super().clean()
        if data.get("password", "") != data.get("password_again", ""):
            self.add_error("password_again", "The two passwords differ.")
        host, name = data.get("host"), data.get("name")
        if host is not None and not data.get("bind_address"):
            data["bind_address"] = host.address
        if name and not data.get("directory"):
            data["directory"] = f"/var/lib/mariadb-{name}"
        return data

    def split(self) -> tuple[Node, dict, str]:
        """The host, the plain fields and the password, apart."""
        data = dict(self.cleaned_data)
        host, password = data.pop("host"), data.pop("password")
        data.pop("password_again")
        return host, data, password
