from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from console.access import sync_personas

        # Deployment set-up, as Django creates permissions: persona groups follow the code.
        post_migrate.connect(sync_personas, sender=self, dispatch_uid="console.sync_personas")
