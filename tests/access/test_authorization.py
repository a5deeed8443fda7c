"""Every URL, every role, one pinned status.

The URL patterns come from the resolver itself, admin included, so a new URL without an
expectation here fails `test_it_has_an_expectation_for_every_url`. Each role's test requests
every URL (GET, and POST where the view only takes POST) and compares with the table below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.admin.sites import site as admin_site
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver

from access.roles import sync_researcher_group
from generation.models import GenerationJob, GeneratorKind, GeneratorModel, JobStatus, TrainingRun
from pool.models import Finding
from readerstudy.models import Reading
from tests.factories import BareStaffFactory, ResearcherFactory, StaffFactory, UserFactory
from tests.readerstudy.helpers import StudyBuilder, slots_of

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "reader_a", "reader_b", "bare_staff", "researcher", "superuser")
LOGIN = "login"  # a redirect to a login page (the site's or the admin's)


@dataclass(frozen=True)
class Route:
    key: str  # the URL's name (namespace:name), or its regex when it has none
    pattern: URLPattern
    params: tuple[str, ...]


def all_routes() -> list[Route]:
    found: list[Route] = []

    def walk(patterns, namespace: str, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, inner, route)
            elif isinstance(pattern, URLPattern):
                params = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)
                names = tuple(a or b for a, b in params)
                key = f"{namespace}{pattern.name}" if pattern.name else f"<unnamed {route}>"
                found.append(Route(key, pattern, names))
                found[-1].__dict__["route"] = route

    walk(get_resolver().url_patterns, "", "")
    return found


def route_string(route: Route) -> str:
    return route.__dict__["route"]


# --- the world every role is tried against -------------------------------------------------


@pytest.fixture
def world(db):
    sync_researcher_group()
    reader_a, reader_b = UserFactory(username="reader-a"), UserFactory(username="reader-b")
    study = StudyBuilder()(readers=[reader_a], n_practice=1)
    slot = slots_of(study, reader_a)[0]
    Reading.objects.create(slot=slot, answer="real", **_reading_times())
    image = slot.case.image
    generator = GeneratorModel.objects.create(
        name="walker", kind=GeneratorKind.DDPM, findings=["normal"], resolution=32
    )
    run = TrainingRun.objects.create(generator=generator, total_steps=2, status=JobStatus.SUCCEEDED)
    job = GenerationJob.objects.create(generator=generator, count=1, status=JobStatus.SUCCEEDED)
    Finding.objects.create(name="normal")  # the finding vocabulary's admin has a row to show
    # A lock-out record of someone else, so the admin's axes pages have a row to show.
    AccessAttempt.objects.create(
        username="mallory", ip_address="203.0.113.9", user_agent="x", failures_since_start=9,
        get_data="", post_data="", http_accept="", path_info="/accounts/login/",
    )
    AccessFailureLog.objects.create(
        username="mallory", ip_address="203.0.113.9", user_agent="x", http_accept="",
        path_info="/accounts/login/",
    )
    users = {
        "anonymous": None,
        "reader_a": reader_a,
        "reader_b": reader_b,
        "bare_staff": BareStaffFactory(),
        "researcher": ResearcherFactory(),
        "superuser": StaffFactory(),
    }
    return {"study": study, "slot": slot, "image": image, "generator": generator,
            "run": run, "job": job, "users": users}


def _reading_times() -> dict:
    from django.utils import timezone

    now = timezone.now()
    return {"served_at": now, "answered_at": now}


def admin_object_id(model_key: str, world) -> str:
    """The pk of an existing row of the admin URL's model, or one that does not exist."""
    for model in admin_site._registry:
        if f"{model._meta.app_label}_{model._meta.model_name}" == model_key:
            row = model.objects.order_by("pk").first()
            return str(row.pk) if row else "999999"
    raise AssertionError(f"no admin model for {model_key}")


def example_url(route: Route, world) -> str:
    study, slot = world["study"], world["slot"]
    values = {
        "study_id": study.public_id,
        "token": slot.token,
        "table": "readings",
        "kind": "generation",
        "step": "1",
        "app_label": "readerstudy",
        "content_type_id": str(ContentType.objects.get_for_model(study).pk),
        "url": "no-such-page/",
        "window": "lung",
        "uidb64": "MQ",
    }
    if route.key == "staff-image-display":
        values["public_id"] = world["image"].public_id
    else:
        values["public_id"] = study.public_id
    if route.key.startswith("generation-model") or route.key == "generation-checkpoint-samples":
        values["pk"] = str(world["generator"].pk)
    elif route.key.startswith("generation-job"):
        values["pk"] = str(world["job"].pk)
    elif route.key == "staff-reader-invite":
        values["pk"] = str(world["users"]["reader_b"].pk)
    else:
        values["pk"] = str(study.pk)
    # Admin objects: a row of the URL's own model; unnamed redirects and view_on_site: the study.
    values["object_id"] = str(study.pk)
    values["id"] = str(world["users"]["reader_a"].pk)  # auth_user_password_change
    model_url = re.match(r"admin:(\w+?)_(change|delete|history)$", route.key)
    if model_url and "object_id" in route.params:
        values["object_id"] = admin_object_id(model_url.group(1), world)
    path = route_string(route)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], path)
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], path)
    return "/" + re.sub(r"[\^$\\]", "", path)


POST_ONLY = {
    "staff-reader-invite",
    "generation-job-cancel",
    "generation-job-retry",
    "admin:readerstudy_study_open",
    "admin:readerstudy_study_close",
    "admin:readerstudy_study_acknowledge_audit",
    "logout",
    "admin:logout",
}


def observe(client, method: str, url: str):
    response = getattr(client, method)(url)
    if response.status_code == 302 and (
        response["Location"].startswith("/accounts/login/")
        or response["Location"].startswith("/admin/login/")
    ):
        return LOGIN
    return response.status_code


def observed_statuses(client, role: str, world) -> dict[tuple[str, str], object]:
    user = world["users"][role]
    if user is not None:
        client.force_login(user)
    seen = {}
    routes = all_routes()
    for route in routes:
        seen[(route.key, "get")] = observe(client, "get", example_url(route, world))
    for route in routes:  # after every GET: a POST may close the study or log out
        if route.key in POST_ONLY and not route.key.endswith("logout"):
            seen[(route.key, "post")] = observe(client, "post", example_url(route, world))
    return seen


# Statuses in role order: anonymous, reader A (assigned to the study), reader B (not assigned),
# staff without any permission, researcher (the researchers' group), superuser.
# L: a redirect to a login page. Readers never reach the admin; nobody but reader A reaches
# reader A's study and readings (404, not 403: no hint that they exist); staff without the
# researcher role get 403 on every results, export, image, import and generation page.
L = LOGIN
EXPECTED = {
    ("login", "get"): (200, 200, 200, 200, 200, 200),
    ("logout", "get"): (L, 405, 405, 405, 405, 405),
    ("admin:index", "get"): (L, L, L, 200, 200, 200),
    ("admin:login", "get"): (200, 200, 200, 302, 302, 302),
    ("admin:logout", "get"): (L, 302, 302, 405, 405, 405),
    ("admin:password_change", "get"): (L, L, L, 200, 200, 200),
    ("admin:password_change_done", "get"): (L, L, L, 200, 200, 200),
    ("admin:autocomplete", "get"): (L, L, L, 403, 403, 403),
    ("admin:jsi18n", "get"): (L, L, L, 200, 200, 200),
    ("admin:view_on_site", "get"): (L, L, L, 404, 404, 404),
    ("admin:auth_group_changelist", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_group_add", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_group_history", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_group_delete", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_group_change", "get"): (L, L, L, 403, 403, 200),
    ("<unnamed admin/auth/group/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:auth_user_password_change", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_user_changelist", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_user_add", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_user_history", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_user_delete", "get"): (L, L, L, 403, 403, 200),
    ("admin:auth_user_change", "get"): (L, L, L, 403, 403, 200),
    ("<unnamed admin/auth/user/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:axes_accessattempt_changelist", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accessattempt_add", "get"): (L, L, L, 403, 403, 403),
    ("admin:axes_accessattempt_history", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accessattempt_delete", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accessattempt_change", "get"): (L, L, L, 403, 403, 200),
    ("<unnamed admin/axes/accessattempt/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:axes_accesslog_changelist", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accesslog_add", "get"): (L, L, L, 403, 403, 403),
    ("admin:axes_accesslog_history", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accesslog_delete", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accesslog_change", "get"): (L, L, L, 403, 403, 200),
    ("<unnamed admin/axes/accesslog/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:axes_accessfailurelog_changelist", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accessfailurelog_add", "get"): (L, L, L, 403, 403, 403),
    ("admin:axes_accessfailurelog_history", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accessfailurelog_delete", "get"): (L, L, L, 403, 403, 200),
    ("admin:axes_accessfailurelog_change", "get"): (L, L, L, 403, 403, 200),
    ("<unnamed admin/axes/accessfailurelog/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:readerstudy_study_open", "get"): (L, L, L, 405, 405, 405),
    ("admin:readerstudy_study_close", "get"): (L, L, L, 405, 405, 405),
    ("admin:readerstudy_study_add_cases", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_study_duplicate", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_study_acknowledge_audit", "get"): (L, L, L, 405, 405, 405),
    ("admin:readerstudy_study_changelist", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_study_add", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_study_history", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_study_delete", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_study_change", "get"): (L, L, L, 403, 200, 200),
    ("<unnamed admin/readerstudy/study/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:pool_image_changelist", "get"): (L, L, L, 403, 200, 200),
    ("admin:pool_image_add", "get"): (L, L, L, 403, 403, 403),
    ("admin:pool_image_history", "get"): (L, L, L, 403, 200, 200),
    ("admin:pool_image_delete", "get"): (L, L, L, 403, 200, 200),
    ("admin:pool_image_change", "get"): (L, L, L, 403, 200, 200),
    ("<unnamed admin/pool/image/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:pool_finding_changelist", "get"): (L, L, L, 403, 200, 200),
    ("admin:pool_finding_add", "get"): (L, L, L, 403, 200, 200),
    ("admin:pool_finding_history", "get"): (L, L, L, 403, 200, 200),
    ("admin:pool_finding_delete", "get"): (L, L, L, 403, 200, 200),
    ("admin:pool_finding_change", "get"): (L, L, L, 403, 200, 200),
    ("<unnamed admin/pool/finding/<path:object_id>/>", "get"): (L, L, L, 302, 302, 302),
    ("admin:readerstudy_presentationprofile_changelist", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_presentationprofile_add", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_presentationprofile_history", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_presentationprofile_delete", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_presentationprofile_change", "get"): (L, L, L, 403, 200, 200),
    ("<unnamed admin/readerstudy/presentationprofile/<path:object_id>/>", "get"): (
        L, L, L, 302, 302, 302
    ),
    ("admin:generation_generatormodel_changelist", "get"): (L, L, L, 403, 200, 200),
    ("admin:generation_generatormodel_add", "get"): (L, L, L, 403, 200, 200),
    ("admin:generation_generatormodel_history", "get"): (L, L, L, 403, 200, 200),
    ("admin:generation_generatormodel_delete", "get"): (L, L, L, 403, 200, 200),
    ("admin:generation_generatormodel_change", "get"): (L, L, L, 403, 200, 200),
    ("<unnamed admin/generation/generatormodel/<path:object_id>/>", "get"): (
        L, L, L, 302, 302, 302
    ),
    ("admin:app_list", "get"): (L, L, L, 404, 200, 200),
    ("<unnamed admin/(?P<url>.*)$>", "get"): (L, L, L, 404, 404, 404),
    ("healthz", "get"): (200, 200, 200, 200, 200, 200),
    ("favicon", "get"): (200, 200, 200, 200, 200, 200),
    # Password reset is for everyone; the confirm page of a made-up token says it is invalid.
    ("password_reset", "get"): (200, 200, 200, 200, 200, 200),
    ("password_reset_done", "get"): (200, 200, 200, 200, 200, 200),
    ("password_reset_confirm", "get"): (200, 200, 200, 200, 200, 200),
    ("password_reset_complete", "get"): (200, 200, 200, 200, 200, 200),
    ("staff-home", "get"): (L, L, L, 403, 200, 200),
    ("staff-readers", "get"): (L, L, L, 403, 200, 200),
    ("staff-reader-invite", "get"): (L, L, L, 405, 405, 405),
    ("generation-train", "get"): (L, L, L, 403, 200, 200),
    ("generation-generate", "get"): (L, L, L, 403, 200, 200),
    ("generation-jobs", "get"): (L, L, L, 403, 200, 200),
    ("generation-job", "get"): (L, L, L, 403, 200, 200),
    ("generation-job-status", "get"): (L, L, L, 403, 303, 303),
    ("generation-job-cancel", "get"): (L, 405, 405, 405, 405, 405),
    ("generation-job-retry", "get"): (L, 405, 405, 405, 405, 405),
    ("generation-model", "get"): (L, L, L, 403, 200, 200),
    ("generation-model-samples", "get"): (L, L, L, 403, 404, 404),
    ("generation-checkpoint-samples", "get"): (L, L, L, 403, 404, 404),
    ("home", "get"): (L, 200, 200, 200, 200, 200),
    ("study-detail", "get"): (L, 200, 404, 404, 404, 404),
    ("study-next", "get"): (L, 302, 404, 404, 404, 404),
    ("study-done", "get"): (L, 302, 404, 404, 404, 404),
    ("reading-case", "get"): (L, 302, 404, 404, 404, 404),
    ("reading-image", "get"): (L, 200, 404, 404, 404, 404),
    ("reading-feedback", "get"): (L, 200, 404, 404, 404, 404),
    ("reading-image-window", "get"): (L, 200, 404, 404, 404, 404),
    # The world's study shows one image per screen: its screens have no right image.
    ("reading-right-image", "get"): (L, 404, 404, 404, 404, 404),
    ("staff-image-display", "get"): (L, L, L, 403, 200, 200),
    ("staff-import-images", "get"): (L, L, L, 403, 200, 200),
    ("results-dashboard", "get"): (L, L, L, 403, 200, 200),
    ("results-json", "get"): (L, L, L, 403, 200, 200),
    ("results-zip", "get"): (L, L, L, 403, 200, 200),
    ("results-csv", "get"): (L, L, L, 403, 200, 200),
    ("admin:readerstudy_study_open", "post"): (L, L, L, 403, 302, 302),
    ("admin:readerstudy_study_close", "post"): (L, L, L, 403, 302, 302),
    ("admin:readerstudy_study_acknowledge_audit", "post"): (L, L, L, 403, 302, 302),
    ("generation-job-cancel", "post"): (L, L, L, 403, 303, 303),
    ("generation-job-retry", "post"): (L, L, L, 403, 303, 303),
    ("staff-reader-invite", "post"): (L, L, L, 403, 200, 200),
}


def test_it_has_an_expectation_for_every_url():
    routes = all_routes()
    wanted = {(route.key, "get") for route in routes}
    wanted |= {(route.key, "post") for route in routes if route.key in POST_ONLY}
    wanted -= {("logout", "post"), ("admin:logout", "post")}
    assert sorted(wanted - set(EXPECTED)) == [], "new URL: add its row to EXPECTED"
    assert sorted(set(EXPECTED) - wanted) == [], "URL gone: remove its row from EXPECTED"


@pytest.mark.parametrize("role", ROLES)
def test_it_answers_every_url_as_pinned(client, world, role):
    column = ROLES.index(role)
    seen = observed_statuses(client, role, world)
    wrong = [
        f"{method.upper()} {key}: expected {EXPECTED[(key, method)][column]}, got {status}"
        for (key, method), status in seen.items()
        if (key, method) in EXPECTED and EXPECTED[(key, method)][column] != status
    ]
    assert wrong == []


def test_it_lets_only_researchers_open_and_close_studies(client, world):
    study = world["study"]
    client.force_login(world["users"]["bare_staff"])
    client.post(f"/admin/readerstudy/study/{study.pk}/close/")
    study.refresh_from_db()
    assert study.status == "open"
    client.force_login(world["users"]["researcher"])
    client.post(f"/admin/readerstudy/study/{study.pk}/close/")
    study.refresh_from_db()
    assert study.status == "closed"
