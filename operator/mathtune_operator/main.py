"""kopf handlers, and nothing else: each one hands over to `runtime`."""
import kopf

from . import config, names, runtime
from .cli import run  # noqa: F401 - the console script's entry point


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_):
    runtime.configure(settings)


@kopf.timer(names.GROUP, names.VERSION, names.PLURAL, interval=config.RECONCILE_INTERVAL, sharp=False)
def reconcile(body, patch, logger, **_):
    """One pass over the run: observe the current stage, record, act."""
    runtime.reconcile_run(body, patch, logger)


@kopf.on.delete(names.GROUP, names.VERSION, names.PLURAL, optional=True)
def deleted(name, namespace, **_):
    """Its Jobs go with it (ownerReferences); only our metric series remain."""
    runtime.forget_run(namespace, name)
