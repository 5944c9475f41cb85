"""Polling helpers shared by the cluster tests: Kubernetes is eventually consistent."""
import time
from typing import Any, Callable


def wait_for(predicate: Callable[[], Any], timeout: float = 90, what: str = "condition", every: float = 0.5) -> Any:
    """Poll until `predicate()` is truthy and return its value; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def create_test_namespace(core, name: str) -> str:
    """A namespace labelled as a test's, ready for pods: they are refused until
    its default ServiceAccount exists, which the controller-manager makes a
    moment later."""
    from kubernetes import client

    core.create_namespace({"metadata": {"name": name, "labels": {"mathtune.dev/test": "true"}}})

    def has_default_account():
        try:
            return core.read_namespaced_service_account("default", name)
        except client.exceptions.ApiException:
            return None

    wait_for(has_default_account, timeout=60, what=f"ServiceAccount default in {name}", every=0.2)
    return name


def add_changed_row(table: list, printed: str) -> None:
    """Append the one row `kubectl get <kind> <name>` printed when it differs from the last kept row in more
    than its last column (AGE): the resource moved on."""
    lines = printed.splitlines()
    row = lines[-1] if len(lines) == 2 else ""
    if row and (not table or table[-1].rsplit(None, 1)[0] != row.rsplit(None, 1)[0]):
        table.append(row)
