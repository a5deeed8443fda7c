"""The staff results dashboard, its CSV and JSON endpoints, and the admin's way in."""

import csv
import io
import json
import zipfile

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from readerstudy.admin_actions import export_readings_csv
from readerstudy.models import Study
from readerstudy.results import study_analysis, study_payload
from readerstudy.views import dashboard as dashboard_views
from tests.factories import UserFactory
from tests.results.world import finished_study
from tests.sessions import session_queries

pytestmark = pytest.mark.django_db

TRUTHS = ["real", "synthetic", "real", "synthetic"]


def url(study, suffix="") -> str:
    return f"/staff/studies/{study.public_id}/results/{suffix}"


@pytest.fixture
def study():
    return finished_study(
        {"alice": [("real", 4), ("fake", 5), ("unsure", 2), ("real", 3)],
         "bob": [("fake", 2), ("fake", 4), ("real", 5), ("unsure", 1)]},
        TRUTHS, practice=1, repeats={"alice": {1: ("real", 2)}},
    )


def body(response) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else (
        response.content.decode()
    )


# ------------------------------------------------------------------------------ access


def test_it_sends_anonymous_visitors_to_log_in(client, study):
    response = client.get(url(study))
    assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("suffix", ["", "statistics.json", "readings.csv", "all.zip"])
def test_it_keeps_readers_out(client, study, suffix):
    client.force_login(UserFactory())
    response = client.get(url(study, suffix))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_it_answers_404_for_an_unknown_study_or_table(staff_client, study):
    assert staff_client.get("/staff/studies/nope/results/").status_code == 404
    assert staff_client.get(url(study, "votes.csv")).status_code == 404


# ------------------------------------------------------------------------------ the page


def test_it_shows_every_section_with_intervals_and_plots(staff_client, study):
    response = staff_client.get(url(study))
    assert response.status_code == 200
    html = response.content.decode()
    assert "admin/css/base.css" in html or "/static/admin/" in html  # looks like the admin
    for section in ("progress", "readers", "confusion", "agreement", "roc", "fooling",
                    "consistency", "cases", "downloads"):
        assert f'id="{section}"' in html, section
    for plot in ("plot-readers", "plot-kappa", "plot-roc", "plot-fooling"):
        assert f'class="{plot}"' in html, plot
    assert "unsure counts as wrong" in html
    assert '<span class="est">0.500</span> <span class="ci">[0.095, 0.905]</span>' in html
    assert "6 of 6" in html and "5 of 5" in html  # alice: practice, 4 cases, a repeat
    assert "tiny (ddpm)" in html and "job 7" in html
    assert html.count('src="/staff/images/') == 4  # one thumbnail per case read
    assert "Fleiss" in html and "Krippendorff" in html
    for name in ("readings", "readers", "agreement", "cases", "imrmc"):
        assert url(study, f"{name}.csv") in html


def test_it_shows_not_defined_with_reasons_for_degenerate_data(staff_client):
    lonely = finished_study({"alice": [("real", None), ("real", None)]}, ["real", "synthetic"],
                            confidence=False)
    html = staff_client.get(url(lonely)).content.decode()
    assert "ROC and AUC not defined: no confidence ratings were collected" in html
    assert "not defined: no repeated cases" in html
    assert "not defined: needs at least two readers" in html
    assert "Pairwise kappa not defined: needs at least two readers." in html
    assert "nan" not in html.lower().replace("nanoseconds", "")


def test_it_shows_an_empty_study(staff_client):
    empty = finished_study({}, [])
    html = staff_client.get(url(empty)).content.decode()
    assert "No readers are assigned to this study." in html
    assert "No case has been read yet." in html


def test_it_query_count_does_not_grow_with_readers_or_cases(staff_client,
                                                            django_assert_num_queries):
    small = finished_study({"a": [("real", 1), ("fake", 2)]}, ["real", "synthetic"])
    large = finished_study(
        {f"reader{i}": [("fake", 3), ("real", 2), ("unsure", 1)] * 3 for i in range(6)},
        ["real", "synthetic", "synthetic"] * 3, practice=2, repeats={"reader2": {0: ("real", 1)}},
    )
    # (session,) user, study, key aggregates (2), reader labels, readers, cases, readings,
    # progress, the page's case images, the latest machine-observer evaluation, the blinding audit
    for study in (small, large):
        with django_assert_num_queries(12 + session_queries()):
            assert staff_client.get(url(study)).status_code == 200
    # Cached: the readers, cases and readings are not loaded again.
    with django_assert_num_queries(9 + session_queries()):
        assert staff_client.get(url(large)).status_code == 200


def test_it_pages_the_cases_most_often_judged_wrongly_first(staff_client, monkeypatch):
    monkeypatch.setattr(dashboard_views, "CASES_PER_PAGE", 2)
    study = finished_study({"a": [("real", 1), ("fake", 1), ("real", 1)]},
                           ["real", "synthetic", "synthetic"])
    first = staff_client.get(url(study)).content.decode()
    second = staff_client.get(url(study) + "?page=2").content.decode()
    assert "page 1 of 2 (3 cases read)" in first
    # The synthetic image answered real comes first (100% judged wrongly).
    rows = first[first.index('id="case-table"'):].split("<tr>")[2:]
    assert "<td>synthetic</td>" in rows[0] and '<td class="num">100%</td>' in rows[0]
    assert "<td>real</td>" in second and '<td class="num">0%</td>' in second
    assert "page 2 of 2" in second


# --------------------------------------------------------------------------- downloads


def test_it_streams_each_table_as_an_attachment(staff_client, study):
    for name in ("readings", "readers", "agreement", "cases", "mrmc_long", "imrmc_ids",
                 "dictionary"):
        response = staff_client.get(url(study, f"{name}.csv"))
        assert response.status_code == 200 and response.streaming
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == (
            f'attachment; filename="study-{study.public_id}-{name}.csv"'
        )
        rows = list(csv.reader(io.StringIO(body(response))))
        assert len(rows) > 1, name
    imrmc = staff_client.get(url(study, "imrmc.csv"))
    assert imrmc["Content-Type"] == "text/plain; charset=utf-8"
    assert imrmc["Content-Disposition"] == (
        f'attachment; filename="study-{study.public_id}-imrmc.imrmc"'
    )
    assert "BEGIN DATA:" in body(imrmc)
    readers = list(csv.DictReader(io.StringIO(body(staff_client.get(url(study, "readers.csv"))))))
    assert [r["reader"] for r in readers] == ["alice", "bob"]


def test_it_serves_the_statistics_as_json(staff_client, study):
    response = staff_client.get(url(study, "statistics.json"))
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == study_payload(study, study_analysis(study))
    download = staff_client.get(url(study, "statistics.json") + "?download=1")
    assert "attachment" in download["Content-Disposition"]


def test_it_zips_every_table(staff_client, study):
    response = staff_client.get(url(study, "all.zip"))
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        names = archive.namelist()
    assert f"study-{study.public_id}-readings.csv" in names and len(names) >= 5


def test_it_the_admin_study_page_links_to_the_dashboard(staff_client, study):
    html = staff_client.get(f"/admin/readerstudy/study/{study.pk}/change/").content.decode()
    assert f'href="{url(study)}"' in html and "Results dashboard" in html


# ------------------------------------------------------------------------- admin action


def test_it_the_admin_action_streams_one_studys_readings(staff, study):
    request = RequestFactory().post("/admin/readerstudy/study/")
    request.user = staff
    response = export_readings_csv(site._registry[Study], request,
                                   Study.objects.filter(pk=study.pk))
    assert response["Content-Disposition"] == (
        f'attachment; filename="study-{study.public_id}-readings.csv"'
    )
    assert len(list(csv.reader(io.StringIO(body(response))))) == 1 + 11


def test_it_the_admin_action_zips_several_studies(staff, study):
    other = finished_study({"carol": [("fake", 1)]}, ["synthetic"])
    request = RequestFactory().post("/admin/readerstudy/study/")
    request.user = staff
    response = export_readings_csv(site._registry[Study], request,
                                   Study.objects.filter(pk__in=[study.pk, other.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="readings-2-studies.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert sorted(archive.namelist()) == sorted(
            [f"study-{study.public_id}-readings.csv", f"study-{other.public_id}-readings.csv"]
        )
        assert archive.read(f"study-{other.public_id}-readings.csv").decode().count("\r\n") == 2


def test_it_leaves_out_only_the_routine_bootstrap_note():
    from readerstudy.templatetags.results_tags import estimate

    slot = {"estimate": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 3, "not_defined": None,
            "note": "1000 case-bootstrap resamples (stratified by truth), percentile interval; "
                    "0 undefined"}
    assert "note" not in estimate(slot)
    slot["note"] = ("1 reader(s) without a defined value left out; 1000 case-bootstrap resamples "
                    "(stratified by truth), percentile interval; 0 undefined")
    assert '<span class="note">1 reader(s) without a defined value left out</span>' in estimate(slot)
    slot["note"] = "1000 case-bootstrap resamples (stratified by truth), percentile interval; " \
                   "12 undefined"
    assert "12 undefined" in estimate(slot)
    assert estimate({"not_defined": "no readings <b>"}) == (
        '<span class="not-defined">not defined: no readings &lt;b&gt;</span>'
    )


def test_it_offers_two_way_bootstrap_intervals(staff_client, study):
    html = staff_client.get(url(study)).content.decode()
    assert "fixed-reader</strong> interval" in html and "?bootstrap=two-way" in html
    two_way = staff_client.get(url(study) + "?bootstrap=two-way").content.decode()
    assert "random-reader</strong> interval" in two_way
    payload = staff_client.get(url(study, "statistics.json") + "?bootstrap=two-way").json()
    assert payload["summary"]["bootstrap"] == "two-way"
    assert staff_client.get(url(study) + "?bootstrap=readers").status_code == 404
