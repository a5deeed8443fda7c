"""The researcher role: a group holding every permission of the researchers' apps.

Permissions are Django's own model permissions, so the admin, the staff pages and the
authorization test all ask the same question (`user.has_perm`). Superusers have them all;
staff accounts outside the group see nothing of the studies.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

# What each staff page asks for. Viewing a study in the admin already shows its cases and
# their truth, so the same permission opens its results and exports.
VIEW_RESULTS = "readerstudy.view_study"
CHANGE_STUDY = "readerstudy.change_study"
VIEW_IMAGES = "pool.view_image"
IMPORT_IMAGES = "pool.add_image"
# Whoever may change a study may create its readers' accounts and invite them (Researchers
# hold it; the auth app's own user permissions stay with administrators).
MANAGE_READERS = CHANGE_STUDY


def require(request: HttpRequest, permission: str) -> None:
    """403 unless the user holds the permission (the staff check is done by the decorator)."""
    if not request.user.has_perm(permission):
        raise PermissionDenied


def researcher_permissions():
    return Permission.objects.filter(content_type__app_label__in=settings.RESEARCHER_APPS)


def sync_researcher_group() -> Group:
    group, _ = Group.objects.get_or_create(name=settings.RESEARCHER_GROUP)
    group.permissions.add(*researcher_permissions())
    return group


def make_researcher(user) -> None:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.groups.add(sync_researcher_group())


def sync_after_migrate(sender, **kwargs) -> None:
    # auth's own handler has just created the sender's permissions (it connected first).
    if sender.label in settings.RESEARCHER_APPS:
        sync_researcher_group()
