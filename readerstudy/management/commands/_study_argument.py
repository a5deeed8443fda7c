"""The STUDY argument shared by export_study and study_stats."""

from __future__ import annotations

HELP = (
    "Public id or primary key of the study. A public id that starts with '-' must come after "
    "'--', options first: e.g. --table readings -o out.csv -- -Xy12..."
)
HINT = (
    " (a study public id that starts with '-' must come last, after '--', e.g. "
    "`--table readings -o out.csv -- -Xy12...`; or give the study's primary key)"
)


def add_study_argument(parser) -> None:
    parser.add_argument("study", help=HELP)
    error = parser.error

    def error_with_hint(message: str):
        if "study" in message or "unrecognized arguments" in message:
            message += HINT
        return error(message)

    parser.error = error_with_hint
