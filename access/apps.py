from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from access import middleware, roles

        # After every migrate, so that a new model's permissions reach the researchers too.
        post_migrate.connect(roles.sync_after_migrate, dispatch_uid="access-researcher-group")
        user_logged_in.connect(middleware.stamp_session, dispatch_uid="access-stamp-session")
