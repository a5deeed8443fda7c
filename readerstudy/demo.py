"""Set-up steps of `make demo`, each idempotent so the demo can be restarted at will."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from readerstudy.importing import ImportLabels, import_many, read_manifest

SAMPLE_MANIFEST = Path(settings.BASE_DIR) / "sample_data" / "chest-xray-pediatric" / "manifest.csv"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    is_staff: bool


# Fixed, printed credentials: the demo runs on localhost only. Never reuse them.
DEMO_ACCOUNTS = (
    DemoAccount("admin", "spot-the-fake-admin", True),
    DemoAccount("reader1", "spot-the-fake-reader1", False),
    DemoAccount("reader2", "spot-the-fake-reader2", False),
)


def ensure_accounts() -> list[DemoAccount]:
    users = get_user_model()
    for account in DEMO_ACCOUNTS:
        user, _ = users.objects.get_or_create(username=account.username)
        user.is_staff = user.is_superuser = account.is_staff
        user.set_password(account.password)
        user.save()
    return list(DEMO_ACCOUNTS)


def import_sample(progress=None) -> tuple[int, int]:
    """Import the bundled real X-rays; returns (imported, already there)."""
    defaults = ImportLabels(source="chest-xray-pediatric", modality="CXR")
    rows = read_manifest(SAMPLE_MANIFEST, defaults)
    outcomes = import_many(((row.path, row.labels) for row in rows), progress=progress)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        raise RuntimeError("bundled sample failed to import: " + failed[0].line())
    imported = sum(outcome.status == "imported" for outcome in outcomes)
    return imported, len(outcomes) - imported
