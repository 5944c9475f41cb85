"""kopf handlers, and nothing else: each one hands over to `runtime`."""
from typing import Any, Dict, Optional

import kopf

from . import names, runtime


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    runtime.configure(settings)


@kopf.on.cleanup()
def cleanup(**_: Any) -> None:
    runtime.cleanup()


@kopf.on.event(names.GROUP, names.VERSION, names.PLURAL)
def run_event(event: kopf.RawEvent, name: str, namespace: Optional[str], meta: kopf.Meta, **_: Any) -> None:
    """A run appeared, changed or went away: the controller queues it."""
    if namespace is None or runtime.CONTROLLER is None:  # the CRD is namespaced; startup has run
        return
    sweep = (meta.get("labels") or {}).get(names.LABEL_SWEEP)
    if sweep and runtime.CONTROLLER.sweeps is not None:
        runtime.CONTROLLER.sweeps.trial_changed(namespace, sweep)  # a trial's status is its sweep's input
    runtime.CONTROLLER.seen(event.get("type"), namespace, name, int(meta.get("generation") or 0),
                            dict(event.get("object") or {}) or None)


@kopf.on.event(names.GROUP, names.VERSION, names.SWEEP_PLURAL)
def sweep_event(event: kopf.RawEvent, name: str, namespace: Optional[str], **_: Any) -> None:
    """A sweep appeared, changed or went away: the sweep controller queues it."""
    if namespace is None or runtime.CONTROLLER is None or runtime.CONTROLLER.sweeps is None:
        return
    runtime.CONTROLLER.sweeps.seen(event.get("type"), namespace, name)


# PERMANENT: a failing probe answers the liveness endpoint with an error at
# once, instead of kopf retrying it until the kubelet's probe times out.
@kopf.on.probe(id="reconcile", errors=kopf.ErrorsMode.PERMANENT)
def reconcile_loop_alive(**_: Any) -> Dict[str, Any]:
    """Liveness: fails when no worker takes ready work, a worker or a watch died."""
    controller = runtime.CONTROLLER
    if controller is None:
        raise kopf.PermanentError("the controller has not started")
    why = controller.unhealthy()
    if why:
        raise kopf.PermanentError(why)
    return {"leading": controller.leading.is_set(), "queued": len(controller.queue)}
