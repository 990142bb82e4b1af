"""`manage.py lab up|down|reset|status|env`: the test servers (see console/lab/cli.py)."""

import sys

from django.core.management.base import BaseCommand

from console.lab import cli


class Command(BaseCommand):
    help = "Start, stop and describe the lab of test servers (root only)."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        cli.build_parser(parser)

    def handle(self, *args, command: str, parts: list[str] | None = None, **options):
        status = cli.run_command(command, parts, out=self.stdout)
        if status:
            sys.exit(status)
