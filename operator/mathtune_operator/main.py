"""kopf handlers, and nothing else: each one hands over to `runtime`."""
import kopf

from . import names, runtime
from .cli import run  # noqa: F401 - the console script's entry point


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_):
    runtime.configure(settings)


@kopf.on.cleanup()
def cleanup(**_):
    runtime.cleanup()


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL)
def run_event(event, name, namespace, meta, **_):
    """A run appeared, changed or went away: the runner passes over it."""
    runtime.RUNNER.seen(event.get("type"), namespace, name, int(meta.get("generation") or 0))
