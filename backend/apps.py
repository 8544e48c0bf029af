from django.apps import AppConfig


class BackendConfig(AppConfig):
    name = "backend"
    verbose_name = "Sessions Marketplace"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the outbox handlers and periodic jobs (backend/tasks/) in every process:
        # the web process runs tasks inline when there is no broker.
        import backend.tasks  # noqa: F401
        from backend.tasks import scheduler

        if scheduler.should_start():
            scheduler.start_inline_scheduler()
