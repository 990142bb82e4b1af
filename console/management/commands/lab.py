"""`manage.py lab up|down|reset|status|env`: the test servers (see console/lab/cli.py).

`lab up --demo` also registers the lab's clusters and servers in the console's database
(console/lab/demo.py), so `make run` shows real servers.
"""

import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from console.lab import cli
from console.lab.lab import Lab, lab_dir_from_env


class Command(BaseCommand):
    help = "Start, stop and describe the lab of test servers (root only)."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        cli.build_parser(parser, demo=True)

    def handle(self, *args, command: str, parts: list[str] | None = None, **options):
        status = cli.run_command(command, parts, out=self.stdout)
        if status:
            sys.exit(status)
        if options.get("demo"):
            from console.lab.demo import register_demo

            call_command("migrate", verbosity=0)
            registered = register_demo(Lab(lab_dir_from_env()).env())
            self.stdout.write("registered in the console: " + ", ".join(registered))
