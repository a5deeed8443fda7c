"""Signals of generation for other apps (the evaluation app evaluates finished jobs)."""

from django.dispatch import Signal

#: Sent once a generation job's success is committed (never inside its transaction, so a
#: receiver sees the images); kwargs: job_pk. Sent robustly: a receiver that raises is logged
#: and never fails the job.
generation_succeeded = Signal()
