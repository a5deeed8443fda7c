from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Evaluation"

    def ready(self) -> None:
        from evaluation import signals  # noqa: F401  (connects the case-change hooks)
        from evaluation.services import ensure_current_audit, refuse_unacknowledged_leak
        from readerstudy.services.studies import register_open_check

        register_open_check(refuse_unacknowledged_leak, prepare=ensure_current_audit)
