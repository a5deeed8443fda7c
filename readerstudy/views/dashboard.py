"""The researcher's results dashboard of a study, its CSV tables and its JSON (staff only).

Every number comes from `readerstudy.results.study_analysis` (cached on the study's latest
readings); the page's queries do not grow with readers or cases.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from access import roles
from pool.models import Image
from readerstudy import exports, plots
from readerstudy.analysis.bootstrap import CASE, KINDS
from readerstudy.design_results import dashboard_context
from readerstudy.extensions import dashboard_sections
from readerstudy.models import Study
from readerstudy.results import (
    GROUPINGS,
    generator_groups,
    reader_progress,
    study_analysis,
    study_payload,
)

CASES_PER_PAGE = 100


def _get_study_for_staff(request: HttpRequest, public_id: str) -> Study:
    """The study, for a researcher (staff, checked by the decorator, who may view studies)."""
    roles.require(request, roles.VIEW_RESULTS)
    return get_object_or_404(Study.objects.select_related("created_by"), public_id=public_id)


def _no_cache(request: HttpRequest) -> bool:
    return request.GET.get("refresh") == "1"


def _analysis(request: HttpRequest, study: Study):
    """The study's analysis; `?bootstrap=two-way` asks for readers-and-cases intervals."""
    kind = request.GET.get("bootstrap", CASE)
    if kind not in KINDS:
        raise Http404(f"no bootstrap {kind!r}")
    return study_analysis(study, use_cache=not _no_cache(request), bootstrap=kind)


def _case_rows(payload: dict[str, Any], page_number: str | None):
    """Cases most often judged wrongly first (synthetic answered real, real answered fake)."""

    def wrong_share(case: dict[str, Any]) -> float:
        n = case["n_real"] + case["n_unsure"] + case["n_fake"]
        wrong = case["n_real"] if case["truth"] == "synthetic" else case["n_fake"]
        return wrong / n if n else 0.0

    cases = sorted(payload["cases"], key=lambda c: (-wrong_share(c), c["case"]))
    page = Paginator(cases, CASES_PER_PAGE).get_page(page_number)
    facts = {
        row["public_id"]: row
        for row in Image.objects.filter(public_id__in=[c["case"] for c in page]).values(
            "public_id", "modality", "finding", "source", "provenance", "truth"
        )
    }
    rows = []
    for case in page:
        fact = facts.get(case["case"], {})
        generator = ""
        if fact:
            generator = generator_groups(fact["provenance"], fact["truth"], fact["source"])[0]
        n = case["n_real"] + case["n_unsure"] + case["n_fake"]
        rows.append(
            {
                **case,
                "n": n,
                "wrong_share": wrong_share(case) if n else None,
                "modality": fact.get("modality", ""),
                "finding": fact.get("finding", ""),
                "generator": generator if case["truth"] == "synthetic" else "",
            }
        )
    return page, rows


AGREEMENT_NAMES = {
    "fleiss_kappa": "Fleiss' κ",
    "krippendorff_alpha": "Krippendorff's α",
    "gwet_ac1": "Gwet's AC1",
    "percent_agreement": "Percent agreement",
    "mean_pairwise_cohen_kappa": "Mean pairwise Cohen's κ",
}


def _agreement_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for statistic, definition in exports.AGREEMENT_STATISTICS:
        rows.append(
            {
                "statistic": AGREEMENT_NAMES[statistic],
                "definition": definition,
                "all": payload["agreement"][statistic],
                "committed": payload["agreement_committed"][statistic],
            }
        )
    return rows


def _groups_by_grouping(payload: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, name in GROUPINGS.items():
        rows = [g for g in payload["groups"] if g["grouping"] == key]
        out.append({"key": key, "name": name, "rows": rows})
    return out


def _reader_rows(payload: dict[str, Any]) -> list[dict[str, Any]]:
    aucs = {r["reader"]: r for r in payload["roc"]["readers"]}
    intra = {r["reader"]: r for r in payload["intra_reader"]["readers"]}
    return [
        {**reader, "roc": aucs.get(reader["reader"]), "intra": intra.get(reader["reader"])}
        for reader in payload["readers"]
    ]


@require_GET
@staff_member_required
def results_dashboard(request: HttpRequest, public_id: str) -> HttpResponse:
    study = _get_study_for_staff(request, public_id)
    analysis = _analysis(request, study)
    payload = analysis.to_jsonable()
    labels = [r["reader"] for r in payload["readers"]]
    page, case_rows = _case_rows(payload, request.GET.get("page"))
    context = {
        **admin.site.each_context(request),
        "title": f"Results: {study.title}",
        "is_nav_sidebar_enabled": False,  # the tables need the width
        "study": study,
        "opts": Study._meta,
        "payload": payload,
        "summary": payload["summary"],
        "progress": reader_progress(study),
        "readers": _reader_rows(payload),
        "averaged": payload["reader_averaged"],
        "roc": payload["roc"],
        "agreement_rows": _agreement_rows(payload),
        "groupings": _groups_by_grouping(payload),
        "intra": payload["intra_reader"],
        "case_page": page,
        "case_rows": case_rows,
        "tables": exports.TABLES.values(),
        "plot_readers": plots.reader_performance_plot(payload["readers"]),
        "plot_kappa": plots.kappa_heatmap(
            labels, payload["agreement"]["pairwise_cohen_kappa"],
            "Pairwise Cohen's kappa, all answers (real / unsure / fake)",
        ),
        "plot_kappa_committed": plots.kappa_heatmap(
            labels, payload["agreement_committed"]["pairwise_cohen_kappa"],
            "Pairwise Cohen's kappa, committed answers only (SECONDARY)",
        ),
        "plot_roc": plots.roc_plot(payload["roc"]),
        "plot_fooling": plots.fooling_plot(payload["groups"], "generator"),
        "plot_fooling_checkpoint": plots.fooling_plot(
            payload["groups"], "generator_checkpoint"
        ),
        **dashboard_sections(study),
        **dashboard_context(study, analysis),
    }
    return render(request, "readerstudy/dashboard/study.html", context)


@require_GET
@staff_member_required
def results_json(request: HttpRequest, public_id: str) -> HttpResponse:
    study = _get_study_for_staff(request, public_id)
    analysis = _analysis(request, study)
    body = json.dumps(study_payload(study, analysis), allow_nan=False)
    response = HttpResponse(body, content_type="application/json")
    if request.GET.get("download") == "1":
        response["Content-Disposition"] = (
            f'attachment; filename="study-{study.public_id}-statistics.json"'
        )
    return response


@require_GET
@staff_member_required
def results_csv(request: HttpRequest, public_id: str, table: str) -> StreamingHttpResponse:
    study = _get_study_for_staff(request, public_id)
    spec = exports.TABLES.get(table)
    if spec is None:
        raise Http404(f"no table {table!r}")
    # Statistics are computed before the response starts, so an error is a proper error page.
    analysis = _analysis(request, study) if spec.uses_analysis else None
    filename = exports.csv_filename(study, table)
    response = StreamingHttpResponse(
        exports.stream_file(filename, spec.rows(study, analysis)),
        content_type=exports.content_type(filename),
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@staff_member_required
def results_zip(request: HttpRequest, public_id: str) -> StreamingHttpResponse:
    """Every table of the study in one zip, streamed."""
    study = _get_study_for_staff(request, public_id)
    analysis = _analysis(request, study)
    members = (
        (exports.csv_filename(study, name), spec.rows(study, analysis))
        for name, spec in exports.TABLES.items()
    )
    response = StreamingHttpResponse(exports.stream_zip(members), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="study-{study.public_id}-results.zip"'
    return response
