"""What the console built when it provisioned a PostgreSQL cluster (clusters.provision).

`PgProvision` keeps the layout a later standby must match (version, the WAL archive the
standbys restore from, the replication role and its stored password) and the networks the base
pg_hba rules allow. Written by the provisioning job's last step, with the cluster's registration.
"""

from django.db import models
from django.utils import timezone

from clusters.models.inventory import Cluster
from console.models import Credential


class PgProvision(models.Model):
    """How the console provisioned a PostgreSQL cluster (one per cluster)."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="provision")
    version = models.CharField(max_length=8)
    os_family = models.CharField(max_length=16)
    archive_directory = models.CharField(max_length=255)
    networks = models.JSONField(default=list)
    admin_credential = models.ForeignKey(
        Credential, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    replication_user = models.CharField(max_length=63, default="replicator")
    replication_credential = models.ForeignKey(
        Credential, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "PostgreSQL provisioning"

    def __str__(self) -> str:
        return f"provisioning of {self.cluster.name}"
