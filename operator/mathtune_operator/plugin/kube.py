"""The cluster as the plugin sees it: the user's kubeconfig, context and namespace
(as kubectl picks them), MathFinetune runs, their pods and logs. Every API
failure becomes a CliError that says what to do."""
from typing import Any, Callable, Dict, List, Optional, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .. import names
from .errors import ERROR, USAGE, CliError

GROUP, VERSION, PLURAL = names.GROUP, names.VERSION, names.PLURAL


class Cluster:
    def __init__(self, kubeconfig: Optional[str] = None, context: Optional[str] = None,
                 namespace: Optional[str] = None):
        try:
            self.api = config.new_client_from_config(config_file=kubeconfig, context=context)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except (config.ConfigException, OSError, TypeError) as exc:
            raise CliError(f"no usable kubeconfig ({exc}); set --kubeconfig or KUBECONFIG", ERROR) from None
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        self.namespace = namespace or (chosen or {}).get("context", {}).get("namespace") or "default"
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise self._explain(what, exc) from None
        except urllib3.exceptions.HTTPError as exc:  # refused, timed out, retries exhausted: no cluster there
            host = self.api.configuration.host
            raise CliError(f"cannot reach the cluster at {host}: {exc.__class__.__name__}", ERROR) from None

    def _explain(self, what: str, exc: ApiException) -> CliError:
        if exc.status == 404 and "the server could not find the requested resource" in (exc.body or ""):
            kind = "MathFinetuneSweep" if what.startswith("sweep ") else "MathFinetune"
            return CliError(f"the {kind} CRD is not installed on this cluster: install the chart "
                            "(helm install mathtune charts/mathtune-operator; an upgrade does not add new CRDs: "
                            "kubectl apply -f charts/mathtune-operator/crds/)", ERROR)
        if exc.status == 404:
            return CliError(f"{what}: not found in namespace {self.namespace}", USAGE)
        if exc.status in (400, 422):
            import json

            try:
                message = json.loads(exc.body).get("message", exc.body)
            except (ValueError, TypeError):
                message = exc.body
            return CliError(f"{what}: the API server refused it: {message}", USAGE)
        if exc.status in (401, 403):
            return CliError(f"{what}: not allowed ({exc.status} {exc.reason}); check your context's credentials",
                            ERROR)
        return CliError(f"{what}: {exc.status} {exc.reason}", ERROR)

    # runs
    def run(self, name: str) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._call(f"run {name}", self.custom.get_namespaced_custom_object, GROUP,
                                               VERSION, self.namespace, PLURAL, name))

    def runs(self) -> List[Dict[str, Any]]:
        return cast(List[Dict[str, Any]], self._call("runs", self.custom.list_namespaced_custom_object, GROUP,
                                                     VERSION, self.namespace, PLURAL)["items"])

    def create(self, doc: Dict[str, Any]) -> Dict[str, Any]:
        name = (doc.get("metadata") or {}).get("name", "?")
        return cast(Dict[str, Any], self._call(f"run {name}", self.custom.create_namespaced_custom_object, GROUP,
                                               VERSION, self.namespace, PLURAL, doc))

    # sweeps
    def sweep(self, name: str) -> Dict[str, Any]:
        return cast(Dict[str, Any], self._call(f"sweep {name}", self.custom.get_namespaced_custom_object, GROUP,
                                               VERSION, self.namespace, names.SWEEP_PLURAL, name))

    # pods, logs, events
    def stage_pods(self, name: str) -> List[client.V1Pod]:
        pods = self._call("pods", self.core.list_namespaced_pod, self.namespace,
                          label_selector=f"{names.LABEL_RUN}={name}").items
        return sorted(pods, key=lambda p: p.metadata.creation_timestamp)

    def log(self, pod: str, container: Optional[str] = None, previous: bool = False, follow: bool = False) -> Any:
        kwargs: Dict[str, Any] = {"container": container, "previous": previous}
        if follow:
            return self._call(f"pod {pod}", self.core.read_namespaced_pod_log, pod, self.namespace, follow=True,
                              _preload_content=False, **kwargs)
        return self._call(f"pod {pod}", self.core.read_namespaced_pod_log, pod, self.namespace, **kwargs)

    def events(self, name: str) -> List[client.CoreV1Event]:
        items = self._call("events", self.core.list_namespaced_event, self.namespace,
                           field_selector=f"involvedObject.name={name},involvedObject.kind=MathFinetune").items
        return sorted(items, key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp)
