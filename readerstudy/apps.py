from django.apps import AppConfig


class ReaderStudyConfig(AppConfig):
    name = "readerstudy"
    verbose_name = "Reader studies"

    def ready(self) -> None:
        from readerstudy import receivers  # noqa: F401  (rebuild derivatives on profile changes)
        from readerstudy.services.leaks import refuse_truth_leaks
        from readerstudy.services.presentation import (
            build_for_opening,
            refuse_missing_derivatives,
        )
        from readerstudy.services.studies import register_open_check

        # Before the blinding audit (registered by the evaluation app, which is listed later):
        # the audit measures these derivatives.
        register_open_check(refuse_missing_derivatives, prepare=build_for_opening)
        register_open_check(refuse_truth_leaks)
        from readerstudy.design_results import register_tables
        register_tables()
