from django.apps import AppConfig
from django.db.backends.signals import connection_created


class BackendConfig(AppConfig):
    name = "backend"
    verbose_name = "Sessions Marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the outbox handlers and periodic jobs (backend/tasks/) in every process:
        # the web process runs tasks inline when there is no broker.
        import backend.tasks  # noqa: F401
        from backend.integrations import lock_guard
        from backend.tasks import scheduler

        # Gateways refuse to call a provider while this connection holds row locks.
        connection_created.connect(lock_guard.install, dispatch_uid="backend.lock_guard")
        if scheduler.should_start():
            scheduler.start_inline_scheduler()
        # Registers the deployment checks (manage.py check --deploy).
        from backend import checks  # noqa: F401
