"""The inventory: environments, clusters and the servers (nodes) they run on.

Issue 4 grows this into discovery and monitoring; today a cluster is registered with its nodes
(by `clusters.actions.register_cluster`, used by `manage.py lab up --demo`) and each node knows
how the executor reaches it: address, SSH user and the host keys recorded at registration, and
credentials stored encrypted in console.Credential.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from console.executor import MysqlTarget, PgTarget, SshTarget
from console.models import Credential


class Environment(models.Model):
    """A group of clusters with the same stakes: production, staging, lab…"""

    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Cluster(models.Model):
    """A PostgreSQL cluster (primary, standbys, pgpool-II in front) or a MariaDB/MySQL one."""

    class Kind(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MARIADB = "mariadb", "MariaDB/MySQL"

    name = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="clusters")
    description = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["environment__name", "name"]
        permissions = [("failover_cluster", "Can fail over or switch over a cluster")]

    def __str__(self) -> str:
        return self.name


class Node(models.Model):
    """One server: a database server, a pgpool-II node, or a bare host for provisioning.

    A bare host belongs to no cluster. `known_hosts` holds the SSH host keys (OpenSSH
    known_hosts lines) the DBA confirmed at registration; the executor trusts no other key.
    """

    class Service(models.TextChoices):
        POSTGRESQL = "postgresql", "PostgreSQL"
        MARIADB = "mariadb", "MariaDB/MySQL"
        PGPOOL = "pgpool", "pgpool-II"
        NONE = "none", "bare host"

    class Role(models.TextChoices):
        PRIMARY = "primary"
        STANDBY = "standby"
        REPLICA = "replica"
        BALANCER = "balancer"
        NONE = "none"

    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.PROTECT, related_name="nodes"
    )
    name = models.CharField(max_length=64, unique=True)
    service = models.CharField(max_length=16, choices=Service.choices)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.NONE)
    address = models.CharField(max_length=255)
    ssh_port = models.PositiveIntegerField(default=22)
    ssh_user = models.CharField(max_length=64, default="root")
    known_hosts = models.TextField()
    ssh_credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    db_port = models.PositiveIntegerField(null=True, blank=True)
    db_credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data_directory = models.CharField(max_length=255, blank=True)
    # Facts read by discovery (clusters.discovery); empty until the node was discovered.
    version = models.CharField(max_length=64, blank=True)
    version_num = models.PositiveIntegerField(null=True, blank=True)
    config_file = models.CharField(max_length=255, blank=True)
    hba_file = models.CharField(max_length=255, blank=True)
    log_path = models.CharField(max_length=255, blank=True)
    system_identifier = models.CharField(max_length=32, blank=True)
    timeline = models.PositiveIntegerField(null=True, blank=True)
    last_discovered = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["cluster__name", "name"]

    def __str__(self) -> str:
        return self.name

    def ssh_target(self) -> SshTarget:
        return SshTarget(
            name=self.name,
            host=self.address,
            port=self.ssh_port,
            username=self.ssh_user,
            known_hosts=self.known_hosts,
            private_key=self.ssh_credential.reveal() if self.ssh_credential else "",
        )

    def pg_target(self, dbname: str = "postgres") -> PgTarget:
        return PgTarget(
            name=self.name,
            host=self.address,
            port=self.db_port or 5432,
            dbname=dbname,
            username=self.db_credential.username if self.db_credential else "postgres",
            password=self.db_credential.reveal() if self.db_credential else "",
        )

    def mysql_target(self) -> MysqlTarget:
        return MysqlTarget(
            name=self.name,
            host=self.address,
            port=self.db_port or 3306,
            username=self.db_credential.username if self.db_credential else "root",
            password=self.db_credential.reveal() if self.db_credential else "",
        )


class ClusterDrift(models.Model):
    """A difference rediscovery found between a cluster as registered and as it runs now."""

    class Kind(models.TextChoices):
        APPEARED = "appeared", "node appeared"
        VANISHED = "vanished", "node vanished"
        ROLE_CHANGED = "role_changed", "role changed"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="drifts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    node_name = models.CharField(max_length=64)
    address = models.CharField(max_length=255)
    detail = models.CharField(max_length=255)
    found = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-found", "node_name"]

    def __str__(self) -> str:
        return f"{self.cluster}: {self.detail}"


class PendingRegistration(models.Model):
    """A cluster registration in progress, between the DBA's form and the confirmed topology.

    The secrets the DBA typed live only in `secrets_token`, encrypted with console.crypto, and
    are wiped when the registration ends (registered or failed); they become console.Credential
    rows only once the DBA confirmed every host key and the discovered topology.
    """

    class Status(models.TextChoices):
        KEY_FETCHED = "key_fetched", "host key to confirm"
        DISCOVERING = "discovering", "discovering"
        DISCOVERED = "discovered", "topology to confirm"
        FAILED = "failed", "failed"
        REGISTERED = "registered", "registered"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.KEY_FETCHED)
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Cluster.Kind.choices)
    environment = models.CharField(max_length=64)
    address = models.CharField(max_length=255)
    ssh_port = models.PositiveIntegerField(default=22)
    ssh_user = models.CharField(max_length=64)
    db_port = models.PositiveIntegerField()
    db_user = models.CharField(max_length=64)
    pgpool_address = models.CharField(max_length=255, blank=True)
    pgpool_port = models.PositiveIntegerField(null=True, blank=True)
    pcp_port = models.PositiveIntegerField(null=True, blank=True)
    pcp_user = models.CharField(max_length=64, blank=True)
    secrets_token = models.BinaryField(default=b"")
    known_hosts = models.TextField()  # the primary's keys as fetched; trusted once confirmed
    confirmed = models.BooleanField(default=False)
    discovery = models.JSONField(default=dict, blank=True)  # clusters.discovery.Discovery
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"registration of {self.name}"
