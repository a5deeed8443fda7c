from django.apps import AppConfig


class PresentationConfig(AppConfig):
    name = "presentation"
    verbose_name = "Presentation"

    def ready(self) -> None:
        from presentation import signals  # noqa: F401  (rebuild on profile changes)
        from presentation.services import build_for_opening, refuse_missing_derivatives
        from readerstudy.services.leaks import refuse_truth_leaks
        from readerstudy.services.studies import register_open_check

        # Before the blinding audit (registered by the evaluation app, listed later): the audit
        # measures these derivatives.
        register_open_check(refuse_missing_derivatives, prepare=build_for_opening)
        register_open_check(refuse_truth_leaks)
