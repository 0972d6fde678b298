from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = _("Personalisation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks registers the system checks; tasks the Celery tasks, even in a project that
        # does not autodiscover them (a worker without personalization.job_run runs no job).
        # flows registers its send-time rules with the dispatcher.
        from . import checks, flows, tasks  # noqa: F401
        from .capture.defaults import consent_wordings_ensure_after_migrate
        from .flows.defaults import flows_ensure_after_migrate
        from .receivers import connect
        from .schedules import schedules_register_after_migrate
        from .segments.registry import lifecycle_segments_ensure_after_migrate

        connect()
        # Job handlers live in each app's jobs.py, as admin classes live in admin.py.
        autodiscover_modules("jobs")
        post_migrate.connect(schedules_register_after_migrate, sender=self)
        post_migrate.connect(lifecycle_segments_ensure_after_migrate, sender=self)
        post_migrate.connect(consent_wordings_ensure_after_migrate, sender=self)
        # After the lifecycle segments: flows are triggered by them.
        post_migrate.connect(flows_ensure_after_migrate, sender=self)
