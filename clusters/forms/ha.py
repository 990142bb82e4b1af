"""The HA operations' confirmation: the cluster's name, typed."""

import ipaddress

from django import forms

from clusters.ha.deploy import database_nodes
from clusters.models import Node
from console.models import Credential


class HaConfirmForm(forms.Form):
    """Switchover, failover, rebuild and PCP change which server takes writes: the DBA types
    the cluster's name to confirm (checked again by clusters.ha.actions.start_operation)."""

    confirm = forms.CharField(label="Type the cluster's name to confirm", max_length=64)

    def __init__(self, cluster, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cluster = cluster

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self.cluster.name:
            raise forms.ValidationError(
                f"Nothing was started: type the cluster's name, {self.cluster.name}, to confirm."
            )
        return value


SYNCHRONOUS_COMMIT = [
    ("remote_apply", "remote_apply: a commit is visible on the synchronous standby (reads)"),
    ("on", "on: flushed on the synchronous standby"),
    ("remote_write", "remote_write: written (not flushed) on the synchronous standby"),
]
PATH_RE = r"^/[A-Za-z0-9._/-]*$"
USER_RE = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class HaSetupForm(forms.Form):
    """What a DBA chooses for pgpool-II in front of a PostgreSQL cluster (clusters.HaSetup).

    Passwords are write-only: never rendered back; left blank on an existing setup they keep
    the stored secret. One weight field per PostgreSQL server of the cluster (weight_<pk>)."""

    pgpool = forms.ModelChoiceField(
        queryset=Node.objects.none(), label="pgpool-II host",
        help_text="A registered pgpool-II node; its port is pgpool-II's port.",
    )  # fmt: skip
    directory = forms.RegexField(
        regex=PATH_RE, max_length=255, label="Directory on that host",
        help_text="Every file of this deployment: pgpool.conf, keys, scripts, pid, log.",
        error_messages={"invalid": "An absolute path of letters, digits, . _ - and /."},
    )  # fmt: skip
    pcp_port = forms.IntegerField(label="PCP port", min_value=1, max_value=65535, initial=9898)
    pcp_user = forms.RegexField(regex=USER_RE, max_length=63, label="PCP user",
                                initial="pcpadmin")  # fmt: skip
    pcp_password = forms.CharField(
        label="PCP password", required=False, strip=False, max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )  # fmt: skip
    replication_user = forms.RegexField(regex=USER_RE, max_length=63, label="Replication user",
                                        initial="replicator")  # fmt: skip
    replication_password = forms.CharField(
        label="Replication password", required=False, strip=False, max_length=200,
        help_text="Used by rebuilt standbys to stream from the primary.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )  # fmt: skip
    client_networks = forms.CharField(
        label="Client networks", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="pool_hba.conf: who may connect through pgpool-II; one CIDR per line.",
    )  # fmt: skip
    pool_users = forms.ModelMultipleChoiceField(
        queryset=Credential.objects.none(), to_field_name="name", required=False,
        widget=forms.CheckboxSelectMultiple, label="Users in pool_passwd",
        help_text="Stored password credentials whose users connect through pgpool-II.",
    )  # fmt: skip
    health_check_period = forms.IntegerField(label="Health check period (s)", min_value=1,
                                             max_value=3600, initial=1)  # fmt: skip
    health_check_timeout = forms.IntegerField(label="Health check timeout (s)", min_value=1,
                                              max_value=3600, initial=2)  # fmt: skip
    health_check_max_retries = forms.IntegerField(label="Health check retries", min_value=0,
                                                  max_value=100, initial=1)  # fmt: skip
    delay_threshold = forms.IntegerField(
        label="delay_threshold (bytes)", min_value=0, max_value=2**62, initial=1024 * 1024,
        help_text="A standby further behind than this gets no reads.",
    )  # fmt: skip
    synchronous_commit = forms.ChoiceField(choices=SYNCHRONOUS_COMMIT, initial="remote_apply")
    pg_bin = forms.RegexField(
        regex=PATH_RE, max_length=255, label="PostgreSQL programs",
        initial="/usr/lib/postgresql/15/bin",
        error_messages={"invalid": "An absolute path of letters, digits, . _ - and /."},
    )  # fmt: skip

    def __init__(self, cluster, setup=None, *args, **kwargs):
        if setup is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "pgpool": setup.pgpool_id, "directory": setup.directory,
                "pcp_port": setup.pcp_port,
                "pcp_user": setup.pcp_credential.username if setup.pcp_credential else "",
                "replication_user": setup.replication_credential.username
                if setup.replication_credential else "",
                "client_networks": "\n".join(setup.client_networks),
                "pool_users": setup.pool_users,
                **{f: getattr(setup, f) for f in (
                    "health_check_period", "health_check_timeout", "health_check_max_retries",
                    "delay_threshold", "synchronous_commit", "pg_bin")},
                **{f"weight_{b['node']}": b.get("weight", 1) for b in setup.backends},
            }  # fmt: skip
        super().__init__(*args, **kwargs)
        self.cluster, self.setup = cluster, setup
        self.fields["pgpool"].queryset = Node.objects.filter(service=Node.Service.PGPOOL)
        self.fields["pool_users"].queryset = Credential.objects.filter(
            kind=Credential.Kind.PASSWORD
        ).order_by("name")
        self.nodes = database_nodes(cluster)
        for node in self.nodes:
            self.fields[f"weight_{node.pk}"] = forms.IntegerField(
                label=f"Weight of {node.name}", min_value=0, max_value=1000, initial=1,
                help_text="Share of read-only queries; 0: none.",
            )  # fmt: skip
        if setup is None:  # a new setup needs both secrets
            for name in ("pcp_password", "replication_password"):
                self.fields[name].required = True
        else:
            for name in ("pcp_password", "replication_password"):
                self.fields[name].help_text = "Stored; leave blank to keep it."

    def weight_fields(self):
        return [self[f"weight_{node.pk}"] for node in self.nodes]

    def clean_client_networks(self) -> list[str]:
        networks, bad = [], []
        for line in self.cleaned_data["client_networks"].split():
            try:
                networks.append(str(ipaddress.ip_network(line, strict=True)))
            except ValueError:
                bad.append(line)
        if bad:
            raise forms.ValidationError(
                f"Not a network in CIDR form (host bits zero, e.g. 10.1.0.0/16): {', '.join(bad)}"
            )
        if not networks:
            raise forms.ValidationError("At least one network may connect.")
        return networks

    def clean_pool_users(self) -> list[str]:
        return [c.name for c in self.cleaned_data["pool_users"]]

    def clean(self):
        data = super().clean()
        pgpool = data.get("pgpool")
        if pgpool is not None and not pgpool.db_port:
            self.add_error("pgpool", f"{pgpool.name} has no port recorded for pgpool-II.")
        if pgpool is not None and data.get("pcp_port") == pgpool.db_port:
            self.add_error("pcp_port", f"pgpool-II itself listens on {pgpool.db_port}.")
        if self.nodes and not any(data.get(f"weight_{n.pk}") for n in self.nodes):
            self.add_error(f"weight_{self.nodes[0].pk}", "At least one server needs reads.")
        if not self.nodes:
            raise forms.ValidationError("The cluster has no PostgreSQL server registered.")
        return data

    def action_kwargs(self) -> dict:
        """The cleaned values as clusters.ha.setup.save_ha_setup takes them."""
        data = dict(self.cleaned_data)
        data["weights"] = {n.pk: data.pop(f"weight_{n.pk}") for n in self.nodes}
        return data
