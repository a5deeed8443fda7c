"""Where a higher app plugs into the reader study's pages without this app importing it.

Apps above the reader study (the evaluation app) fill these in from their
``AppConfig.ready``; the study's pages only ever read them. Registering the same name again
replaces the earlier entry, so ``ready`` may run twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

#: name -> provider(study): each adds ``{name: provider(study)}`` to the results dashboard.
_dashboard_sections: dict[str, Callable[[Any], Any]] = {}


def register_dashboard_section(name: str, provider: Callable[[Any], Any]) -> None:
    """Put ``provider(study)`` into the study dashboard's context as ``name``."""
    _dashboard_sections[name] = provider


def dashboard_sections(study) -> dict[str, Any]:
    """The registered sections of this study's dashboard, by context name."""
    return {name: provider(study) for name, provider in _dashboard_sections.items()}


@dataclass(frozen=True)
class StudyAdminView:
    """A POST-only page of the study admin at ``<pk>/<route>/`` (URL name ``admin:<name>``).

    The admin checks the change permission on the study, calls ``handle(request, study)``
    (which reports through ``django.contrib.messages``) and redirects back to the study.
    """

    route: str
    name: str
    handle: Callable[[HttpRequest, Any], None]


_study_admin_views: dict[str, StudyAdminView] = {}


def register_study_admin_view(view: StudyAdminView) -> None:
    """Add a POST-only study admin page; read when the admin's URLs are built."""
    _study_admin_views[view.name] = view


def study_admin_views() -> list[StudyAdminView]:
    return list(_study_admin_views.values())
