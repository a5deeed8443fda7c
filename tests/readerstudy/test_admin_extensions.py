"""Pages other apps add to the study admin (``readerstudy.extensions.StudyAdminView``)."""

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import resolve, reverse

from evaluation.admin_views import ACKNOWLEDGE_AUDIT
from readerstudy import extensions
from readerstudy.extensions import StudyAdminView
from readerstudy.models import Study
from tests.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_it_serves_the_evaluation_apps_acknowledge_page_from_the_registry():
    assert extensions._study_admin_views[ACKNOWLEDGE_AUDIT.name] is ACKNOWLEDGE_AUDIT
    match = resolve(reverse("admin:readerstudy_study_acknowledge_audit", args=[7]))
    assert match.kwargs == {"pk": 7}
    assert match.func.__wrapped__.keywords == {"view": ACKNOWLEDGE_AUDIT}  # admin_view(partial)


def _added_pattern(monkeypatch, handle):
    view = StudyAdminView(route="ping", name="readerstudy_study_ping", handle=handle)
    monkeypatch.setitem(extensions._study_admin_views, view.name, view)
    patterns = site._registry[Study].get_urls()
    return next(pattern for pattern in patterns if pattern.name == view.name)


def _request(method, user):
    request = getattr(RequestFactory(), method)("/")
    request.user = user
    request._dont_enforce_csrf_checks = True  # the client's CSRF token is not what is tested
    return request


def test_it_calls_a_registered_view_on_post_and_goes_back_to_the_study(monkeypatch):
    study = StudyFactory()
    calls = []
    pattern = _added_pattern(monkeypatch, lambda request, study: calls.append(study.pk))
    superuser = UserFactory(is_staff=True, is_superuser=True)

    response = pattern.callback(_request("post", superuser), pk=study.pk)

    assert calls == [study.pk]
    assert response.status_code == 302
    assert response.url == reverse("admin:readerstudy_study_change", args=[study.pk])


def test_it_refuses_get_and_users_without_the_change_permission(monkeypatch):
    study = StudyFactory()
    calls = []
    pattern = _added_pattern(monkeypatch, lambda request, study: calls.append(study.pk))
    superuser = UserFactory(is_staff=True, is_superuser=True)

    assert pattern.callback(_request("get", superuser), pk=study.pk).status_code == 405
    bare_staff = UserFactory(is_staff=True)
    with pytest.raises(PermissionDenied):
        pattern.callback(_request("post", bare_staff), pk=study.pk)
    anonymous = pattern.callback(_request("post", AnonymousUser()), pk=study.pk)
    assert anonymous.status_code == 302 and "login" in anonymous.url
    assert calls == []
