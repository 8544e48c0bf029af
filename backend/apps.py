from django.apps import AppConfig


class BackendConfig(AppConfig):
    name = "backend"
    verbose_name = "Sessions Marketplace"
    default_auto_field = "django.db.models.BigAutoField"
