"""The radiologist's pages: their studies, and reading one case after another."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from readerstudy.models import Assignment


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    assignments = (
        Assignment.objects.filter(reader=request.user).select_related("study").order_by("-assigned_at")
    )
    return render(request, "readerstudy/home.html", {"assignments": assignments})
