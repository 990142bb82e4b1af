"""Forms of PostgreSQL provisioning: a new cluster on a bare host, a standby for it.

Each field refuses what the steps could not use, with a message naming it: paths are absolute
and plain, addresses and networks parse, names fit PostgreSQL's rules for slots and
application_name. Nothing reaches a host before the form is valid."""

import ipaddress
import re

from django import forms

from clusters.models import Cluster, Node
from clusters.provision.pg import PgSpec, default_paths
from clusters.provision.standby import SYNC_COMMITS, SYNC_METHODS, StandbySpec
from users.passwords import PasswordRefused, pg_saslprep

VERSIONS = [("15", "15"), ("16", "16"), ("17", "17"), ("14", "14")]
_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")
_LOCALE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+:/_-]{0,127}$")
_SLOT = re.compile(r"^[a-z0-9_]{1,63}$")
MIN_PASSWORD = 12


def bare_hosts():
    return Node.objects.filter(cluster__isnull=True, service=Node.Service.NONE).order_by("name")


def clean_path(value: str, *, field: str) -> str:
    value = value.strip()
    if value and (not _PATH.match(value) or ".." in value.split("/") or value == "/"):
        raise forms.ValidationError(
            f"{field} must be an absolute path of letters, digits, '.', '_', '-' and '/' (no '..')."
        )
    return value.rstrip("/") if value else value


def split_list(value: str) -> list[str]:
    return [item for item in re.split(r"[\s,]+", value.strip()) if item]


def clean_addresses(value: str) -> list[str]:
    addresses = split_list(value)
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise forms.ValidationError(
                f"{address!r} is not an IP address (give the interfaces' addresses, not *)."
            ) from None
    return addresses


class _ServerFields(forms.Form):
    """The fields a primary and a standby share: where the server lives on its host."""

    host = forms.ModelChoiceField(
        queryset=Node.objects.none(),
        label="Bare host",
        help_text="A registered host without a cluster (Clusters → Inventory → Register a host).",
    )
    data_directory = forms.CharField(max_length=255, initial="/var/lib/postgresql/15/main")
    port = forms.IntegerField(min_value=1, max_value=65535, initial=5432)
    listen_addresses = forms.CharField(
        max_length=255, required=False, label="Listen addresses",
        help_text="IP addresses of the interfaces to listen on, separated by commas; empty: "
        "the host's address. The first one is how the console and the standbys connect.",
    )  # fmt: skip
    socket_directory = forms.CharField(
        max_length=255, required=False, label="Unix socket directory",
        help_text="Empty: <data directory>.run beside the data directory.",
    )  # fmt: skip
    log_file = forms.CharField(
        max_length=255, required=False, label="Server log file",
        help_text="Empty: <data directory>.log beside the data directory.",
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host"].queryset = bare_hosts()

    def clean_data_directory(self):
        value = clean_path(self.cleaned_data["data_directory"], field="The data directory")
        if value.count("/") < 2:
            raise forms.ValidationError("The data directory must not be a top-level directory.")
        return value

    def clean_socket_directory(self):
        return clean_path(self.cleaned_data["socket_directory"], field="The socket directory")

    def clean_log_file(self):
        return clean_path(self.cleaned_data["log_file"], field="The log file")

    def clean_listen_addresses(self):
        return clean_addresses(self.cleaned_data["listen_addresses"])

    def server_values(self) -> dict:
        data = self.cleaned_data
        defaults = default_paths(data["data_directory"])
        return {
            "data_directory": data["data_directory"],
            "port": data["port"],
            "listen_addresses": data["listen_addresses"] or [data["host"].address],
            "socket_directory": data["socket_directory"] or defaults["socket_directory"],
            "log_file": data["log_file"] or defaults["log_file"],
        }


class ProvisionForm(_ServerFields):
    """A new PostgreSQL cluster's primary on a bare host."""

    cluster = forms.SlugField(max_length=50, label="Cluster name")
    environment = forms.SlugField(max_length=64, initial="production")
    version = forms.ChoiceField(choices=VERSIONS, initial="15", label="PostgreSQL version",
                                help_text="Tested with 15 (Debian 12).")  # fmt: skip
    locale = forms.CharField(max_length=64, initial="C.UTF-8")
    networks = forms.CharField(
        max_length=1000, label="Allowed networks",
        help_text="CIDR networks allowed in by scram-sha-256 (clients and replication), "
        "separated by commas. Include the console's own address.",
    )  # fmt: skip
    archive_directory = forms.CharField(
        max_length=255, label="WAL archive directory",
        help_text="The backup catalog's WAL directory; standbys restore from it at the same path.",
    )  # fmt: skip
    package = forms.CharField(
        max_length=128, required=False, label="Server package",
        help_text="Empty: postgresql-<version> (Debian), dev-db/postgresql:<version> (Gentoo).",
    )  # fmt: skip
    admin_password = forms.CharField(
        widget=forms.PasswordInput, strip=False, label="Admin (postgres) password",
        help_text=f"At least {MIN_PASSWORD} characters; stored encrypted, sent to the server "
        "only as a SCRAM verifier.",
    )  # fmt: skip
    admin_password_again = forms.CharField(
        widget=forms.PasswordInput, strip=False, label="Admin password again"
    )

    field_order = ["host", "cluster", "environment", "version", "data_directory", "port",
                   "locale", "listen_addresses", "networks", "archive_directory",
                   "socket_directory", "log_file", "package", "admin_password",
                   "admin_password_again"]  # fmt: skip

    def clean_cluster(self):
        name = self.cleaned_data["cluster"]
        if Cluster.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A cluster named {name} is already registered.")
        return name

    def clean_locale(self):
        value = self.cleaned_data["locale"].strip()
        if not _LOCALE.match(value):
            raise forms.ValidationError("A locale looks like C.UTF-8 or en_US.UTF-8.")
        return value

    def clean_networks(self):
        networks = []
        for item in split_list(self.cleaned_data["networks"]):
            try:
                networks.append(str(ipaddress.ip_network(item, strict=True)))
            except ValueError as e:
                raise forms.ValidationError(f"{item!r} is not a network: {e}.") from None
        if not networks:
            raise forms.ValidationError("Give at least one network.")
        return networks

    def clean_archive_directory(self):
        return clean_path(self.cleaned_data["archive_directory"], field="The archive directory")

    def clean_package(self):
        value = self.cleaned_data["package"].strip()
        if value and not _PACKAGE.match(value):
            raise forms.ValidationError("Not a package name.")
        return value

    def clean_admin_password(self):
        password = self.cleaned_data["admin_password"]
        if len(password) < MIN_PASSWORD:
            raise forms.ValidationError(f"At least {MIN_PASSWORD} characters.")
        try:
            pg_saslprep(password)
        except PasswordRefused as e:
            raise forms.ValidationError(str(e)) from None
        return password

    def clean(self):
        data = super().clean()
        if data.get("admin_password") and data.get("admin_password_again") is not None:
            if data["admin_password"] != data["admin_password_again"]:
                self.add_error("admin_password_again", "The two passwords differ.")
        return data

    def spec(self) -> PgSpec:
        data = self.cleaned_data
        host = data["host"]
        return PgSpec(
            **self.server_values(), version=data["version"], locale=data["locale"],
            package=data["package"], node_name=f"{data['cluster']}-{host.name}"[:64],
            cluster=data["cluster"], environment=data["environment"],
            networks=data["networks"], archive_directory=data["archive_directory"],
            admin_credential=f"{data['cluster']}-admin",
        )  # fmt: skip


class StandbyForm(_ServerFields):
    """A standby for a provisioned cluster, on another bare host."""

    application_name = forms.CharField(
        max_length=63, label="Standby name",
        help_text="Its application_name and replication slot: lower-case letters, digits, _.",
    )  # fmt: skip
    mode = forms.ChoiceField(
        choices=[
            ("hot", "hot: streaming, open for reads"),
            ("warm", "warm: archive recovery only, not open"),
        ],  # fmt: skip
        initial="hot",
    )
    synchronous = forms.BooleanField(required=False, initial=True)
    sync_method = forms.ChoiceField(choices=[(m, m) for m in SYNC_METHODS], initial="FIRST",
                                    label="Synchronous method")  # fmt: skip
    sync_count = forms.IntegerField(
        min_value=1, max_value=16, initial=1, label="n (FIRST n / ANY n)"
    )
    synchronous_commit = forms.ChoiceField(choices=[(c, c) for c in SYNC_COMMITS],
                                           initial="remote_apply")  # fmt: skip

    def __init__(self, *args, cluster: Cluster, **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster

    def clean_application_name(self):
        value = self.cleaned_data["application_name"]
        if not _SLOT.match(value):
            raise forms.ValidationError("Lower-case letters, digits and _ only (a slot name).")
        return value

    def clean(self):
        data = super().clean()
        host = data.get("host")
        if host and Node.objects.filter(name=f"{self.cluster.name}-{host.name}"[:64]).exists():
            self.add_error("host", f"{host.name} already runs a server of {self.cluster.name}.")
        if data.get("mode") == "warm" and data.get("synchronous"):
            self.add_error(
                "synchronous", "A warm standby does not stream: it cannot be synchronous."
            )
        return data

    def spec(self) -> StandbySpec:
        data = self.cleaned_data
        host = data["host"]
        return StandbySpec(
            **self.server_values(), version=self.cluster.provision.version,
            node_name=f"{self.cluster.name}-{host.name}"[:64],
            application_name=data["application_name"], mode=data["mode"],
            synchronous=data["synchronous"], sync_method=data["sync_method"],
            sync_count=data["sync_count"], synchronous_commit=data["synchronous_commit"],
        )  # fmt: skip
