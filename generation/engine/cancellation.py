"""The one cancellation check every engine loop uses between steps, batches or requests."""

from typing import Any


def cancel_requested(cancel: Any) -> bool:
    """True if `cancel` (None, a callable returning True, or an object with is_set(), such as
    a threading.Event) says stop."""
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())
