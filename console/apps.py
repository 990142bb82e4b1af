from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        from console.access import sync_personas

        # Deployment set-up, as Django creates permissions: persona groups follow the code. Sent
        # for the last installed app, once every app's permissions exist.
        last_app = list(apps.get_app_configs())[-1]
        post_migrate.connect(sync_personas, sender=last_app, dispatch_uid="console.sync_personas")
