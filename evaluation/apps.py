from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Evaluation"

    def ready(self) -> None:
        from evaluation import signals  # noqa: F401  (connects the case-change hooks)
        from evaluation.services import ensure_current_audit, refuse_unacknowledged_leak
        from readerstudy.services.studies import register_open_check

        register_open_check(refuse_unacknowledged_leak, prepare=ensure_current_audit)

        from evaluation.exports import quality_rows
        from readerstudy.exports import TableSpec, register_table

        register_table(TableSpec(
            "quality", "fidelity, memorization and machine-observer figures of the evaluations "
            "of the study's synthetic images, with real-vs-real baselines", quality_rows, False,
        ))
        self._register_pages()

    def _register_pages(self) -> None:
        """The evaluation's parts of the lower apps' pages (their templates include ours)."""
        from evaluation.admin_views import ACKNOWLEDGE_AUDIT
        from evaluation.pages import latest_evaluation, latest_machine_observer
        from generation.extensions import register_job_panel, register_model_panel
        from readerstudy.extensions import register_dashboard_section, register_study_admin_view

        register_dashboard_section("machine", latest_machine_observer)
        register_study_admin_view(ACKNOWLEDGE_AUDIT)
        register_model_panel("quality", latest_evaluation)
        register_job_panel("quality", latest_evaluation)
