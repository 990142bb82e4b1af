"""The inventory: environments, clusters and the servers (nodes) they run on.

Issue 4 grows this into discovery and monitoring; today a cluster is registered with its nodes
(by `clusters.actions.register_cluster`, used by `manage.py lab up --demo`) and each node knows
how the executor reaches it: address, SSH user and the host keys recorded at registration, and
credentials stored encrypted in console.Credential.
"""

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
