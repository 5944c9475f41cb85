"""kopf handlers, and nothing else: each one hands over to `runtime`."""
from typing import Any, Optional

import kopf

from . import names, runtime
from .cli import run  # noqa: F401 - the console script's entry point


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    runtime.configure(settings)


@kopf.on.cleanup()
def cleanup(**_: Any) -> None:
    runtime.cleanup()


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL)
def run_event(event: kopf.RawEvent, name: str, namespace: Optional[str], meta: kopf.Meta, **_: Any) -> None:
    """A run appeared, changed or went away: the runner passes over it."""
    if namespace is None:  # the CRD is namespaced: never the case
        return
    runtime.RUNNER.seen(event.get("type"), namespace, name, int(meta.get("generation") or 0))
