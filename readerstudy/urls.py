from django.urls import path

from readerstudy.views import dashboard as results_dashboard
from readerstudy.views import designs, reading

# Reader URLs carry only a study's public id or a per-reading slot token: never an image id.
urlpatterns = [
    path("", reading.home, name="home"),
    path("studies/<str:study_id>/", reading.study_detail, name="study-detail"),
    path("studies/<str:study_id>/next/", reading.study_next, name="study-next"),
    path("studies/<str:study_id>/done/", reading.study_done, name="study-done"),
    path("read/<str:token>/", reading.case, name="reading-case"),
    path("read/<str:token>/image.png", reading.image, name="reading-image"),
    path("read/<str:token>/right.png", designs.right_image, name="reading-right-image"),
    path("read/<str:token>/feedback/", reading.feedback, name="reading-feedback"),
    path(
        "read/<str:token>/window/<slug:window>.png",
        reading.image,
        name="reading-image-window",
    ),
    # Results of a study (staff only): dashboard, CSV tables, zip of all tables, JSON.
    path(
        "staff/studies/<str:public_id>/results/",
        results_dashboard.results_dashboard,
        name="results-dashboard",
    ),
    path(
        "staff/studies/<str:public_id>/results/statistics.json",
        results_dashboard.results_json,
        name="results-json",
    ),
    path(
        "staff/studies/<str:public_id>/results/all.zip",
        results_dashboard.results_zip,
        name="results-zip",
    ),
    path(
        "staff/studies/<str:public_id>/results/<str:table>.csv",
        results_dashboard.results_csv,
        name="results-csv",
    ),
]
