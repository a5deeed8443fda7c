"""The researchers' generation pages, mounted under /staff/generation/ (staff only)."""

from django.urls import path, register_converter

from generation import views


class JobKindConverter:
    regex = "training|generation"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(JobKindConverter, "jobkind")

urlpatterns = [
    path("train/", views.train, name="generation-train"),
    path("generate/", views.generate, name="generation-generate"),
    path("jobs/", views.job_list, name="generation-jobs"),
    path("jobs/<jobkind:kind>/<int:pk>/", views.job_detail, name="generation-job"),
    path("jobs/<jobkind:kind>/<int:pk>/status/", views.job_status, name="generation-job-status"),
    path("jobs/<jobkind:kind>/<int:pk>/cancel/", views.job_cancel, name="generation-job-cancel"),
    path("jobs/<jobkind:kind>/<int:pk>/retry/", views.job_retry, name="generation-job-retry"),
    path("models/<int:pk>/", views.model_detail, name="generation-model"),
    path("models/<int:pk>/samples.png", views.model_samples, name="generation-model-samples"),
    path(
        "models/<int:pk>/checkpoints/<int:step>/samples.png",
        views.checkpoint_samples,
        name="generation-checkpoint-samples",
    ),
]
