"""Operator settings from the environment (read once, at import: kopf needs
the timer interval when the handler is declared)."""
import os


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r}: expected a number of seconds") from exc


# Seconds between reconcile passes of one run. Tests set it low.
RECONCILE_INTERVAL = _float("MATHTUNE_RECONCILE_INTERVAL", 5.0)
# Seconds between reads of a running stage pod's log for progress lines.
PROGRESS_INTERVAL = _float("MATHTUNE_PROGRESS_INTERVAL", 30.0)
