"""Log-in landing, and the researchers' reader accounts page (create, invite again).

The reader pages render in the admin's look, like the other staff pages. An invitation link
is a secret: it is shown only in the response to the POST that made it, never put in a URL,
a message or the session.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render, resolve_url
from django.views.decorators.http import require_http_methods, require_POST

from access import roles
from access.forms import ReaderForm, ReaderListForm
from access.invites import create_reader, delivers_email, invite_all, valid_days

User = get_user_model()
READERS_PER_PAGE = 50
PAGE_CACHE_CONTROL = "private, no-store"


class LoginView(auth_views.LoginView):
    """Django's login; researchers land on the staff home, everyone else on their studies."""

    def get_default_redirect_url(self) -> str:
        if self.request.user.has_perm(roles.VIEW_RESULTS) and self.request.user.is_staff:
            return resolve_url("staff-home")
        return super().get_default_redirect_url()


def _page(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = PAGE_CACHE_CONTROL
    return response


def _context(request: HttpRequest, title: str) -> dict:
    return {**admin.site.each_context(request), "title": title}


def _readers(request: HttpRequest):
    """Accounts that are not staff: the readers, newest first, optionally searched."""
    readers = User.objects.filter(is_staff=False, is_superuser=False).order_by(
        "-date_joined", "-pk"
    )
    query = request.GET.get("q", "").strip()
    if query:
        readers = readers.filter(
            Q(username__icontains=query)
            | Q(email__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    return Paginator(readers, READERS_PER_PAGE).get_page(request.GET.get("page")), query


def _get_reader_for_user(request: HttpRequest, pk: int):
    roles.require(request, roles.MANAGE_READERS)
    return get_object_or_404(User, pk=pk, is_staff=False, is_superuser=False)


def _invitations_page(request: HttpRequest, invitations: list, created: bool) -> HttpResponse:
    context = {
        **_context(request, "Reader invitations"),
        "invitations": invitations,
        "created": created,
        "delivers_email": delivers_email(),
        "valid_days": valid_days(),
    }
    return _page(render(request, "access/invitations.html", context))


@staff_member_required
@require_http_methods(["GET", "POST"])
def readers(request: HttpRequest) -> HttpResponse:
    roles.require(request, roles.MANAGE_READERS)
    one = ReaderForm(request.POST if request.POST.get("action") == "one" else None, prefix="one")
    many = ReaderListForm(
        request.POST if request.POST.get("action") == "list" else None, prefix="list"
    )
    for form in (one, many):
        if form.is_bound and form.is_valid():
            with transaction.atomic():
                users = [create_reader(new) for new in form.readers]
            return _invitations_page(request, invite_all(request, users), True)
    page, query = _readers(request)
    context = {
        **_context(request, "Readers"),
        "one": one,
        "many": many,
        "page": page,
        "query": query,
        "delivers_email": delivers_email(),
    }
    return _page(render(request, "access/readers.html", context))


@staff_member_required
@require_POST
def reader_invite(request: HttpRequest, pk: int) -> HttpResponse:
    reader = _get_reader_for_user(request, pk)
    return _invitations_page(request, invite_all(request, [reader]), False)
