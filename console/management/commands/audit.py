"""`manage.py audit verify`: recompute the audit chain and name the first broken entry."""

from django.core.management.base import BaseCommand, CommandError

from console import audit, audit_chain
from console.models import AuditEntry


class Command(BaseCommand):
    help = "Audit log tools. verify: recompute the hash chain; exit 1 if it is broken."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        sub.add_parser("verify", help="verify the whole chain")

    def handle(self, *args, subcommand: str, **options):
        result = audit_chain.verify()
        if result.intact:
            self.stdout.write(
                f"{result.checked} entries checked; chain intact; head {result.head_hash}"
            )
            status, error = AuditEntry.Status.SUCCEEDED, ""
        else:
            error = f"entry #{result.broken_id}: {result.reason}"
            status = AuditEntry.Status.FAILED
        audit.append(
            audit.AUDIT_VERIFY,
            source=AuditEntry.Source.CLI,
            status=status,
            target="audit-chain",
            output=f"{result.checked} entries checked",
            error=error,
        )
        if not result.intact:
            raise CommandError(
                f"chain broken at entry #{result.broken_id}: {result.reason} "
                f"({result.checked} entries before it are intact)",
                returncode=1,
            )
