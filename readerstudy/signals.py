"""Signals of the reader study for other apps (the evaluation app audits changed studies)."""

from django.dispatch import Signal

#: Sent after cases were added in bulk (bulk_create sends no post_save); kwargs: study.
cases_added = Signal()
