"""What one write of a run costs the API server, against a Job create: the
price of every status write the operator makes, which at hundreds of runs
decides how soon their watchers (`kubectl get mft -w`, the operator itself)
see a change.

On the local cluster, in a namespace of its own and with no operator
running, it writes N times each of:

- a Job create (the baseline: the Job controller's everyday write);
- a run's status patch, with a finished run's status (every condition,
  stage row and result, as the operator writes them), under the CRD as
  shipped, then under two variants of it, to say what the cost is made of:
  without its CEL rules, and with a status schema that validates nothing.

and prints the API server's CPU milliseconds per write (its /proc CPU time
over the writes; the cluster is otherwise idle) as ratios to the Job
create. The shipped CRD is applied again at the end, whatever happens.

    .venv/bin/python tests/bench/scale_write_cost.py      (part of make bench-scale)
"""
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import yaml
from kubernetes import client, config as k8s_config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from hack.cluster import local  # noqa: E402
from tests.bench.common import (CRD, apiserver_pid, crd_variant, proc_cpu_seconds, settle_apiserver,  # noqa: E402
                                wait_established)
from mathtune_operator import plan, results, status as st  # noqa: E402

NAMESPACE = "bench-write-cost"
GROUP, VERSION, PLURAL = "mathtune.dev", "v1alpha1", "mathfinetunes"
WRITES = int(os.environ.get("BENCH_WRITES", "300"))
RUNS = 10  # the writes go round these runs, as the operator's go round many


def finished_status() -> dict:
    """A finished run's status, built by the operator's own code from the
    stage results of a real CPU run."""
    rows = st.stage_rows("r", list(plan.ALL_STAGES), [])
    out: dict = {}
    for line in (REPO / "tests" / "fixtures" / "stage-results-cpu-run.jsonl").read_text().splitlines():
        result = json.loads(line)
        summary, out = results.apply(result["stage"], result, out)
        rows[result["stage"]].update(state="Succeeded", summary=summary, attempts=1,
                                     startTime="2026-01-01T00:00:00Z", completionTime="2026-01-01T00:01:00Z")
    return {"phase": "Succeeded", "stage": "Done", "observedGeneration": 1, "startTime": "2026-01-01T00:00:00Z",
            "results": out, "display": results.display(out), "stages": list(rows.values()),
            "conditions": st.conditions_for([], rows, "Succeeded", "Done", "done", 1, "2026-01-01T00:07:00Z")}


def cpu_ms_per_write(write: Callable[[int], None]) -> float:
    for i in range(5):  # warm: connections, caches
        write(i)
    settle_apiserver()
    pid = apiserver_pid()
    before = proc_cpu_seconds(pid)
    for i in range(WRITES):
        write(i)
    return 1000 * (proc_cpu_seconds(pid) - before) / WRITES


def main() -> int:
    kubeconfig = local.KUBECONFIG if local.healthy() else local.up()
    k8s_config.load_kube_config(str(kubeconfig))
    api = client.ApiClient()
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    local.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=300s",
                  kubeconfig=kubeconfig)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    status = finished_status()
    run = yaml.safe_load((REPO / "examples" / "seed000-llama3-quota-cot.yaml").read_text())

    def create_job(i: int) -> None:
        batch.create_namespaced_job(NAMESPACE, {
            "metadata": {"name": f"j{i}-{time.monotonic_ns()}"},
            "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "mathtune/pipeline:cpu", "command": ["true"]}]}}}})

    def patch_status(i: int) -> None:
        body = {"conditions": copy.deepcopy(status["conditions"]), "stages": copy.deepcopy(status["stages"])}
        body["conditions"][-4]["message"] = f"write {i}"  # Ready's message: a change to store
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, NAMESPACE, PLURAL, f"w{i % RUNS}",
                                                     {"status": body})

    figures: Dict[str, float] = {"a Job create (baseline)": cpu_ms_per_write(create_job)}
    try:
        for label, crd in [("a run's status patch, the CRD as shipped", CRD),
                           ("... the CRD without its CEL rules", crd_variant(strip_rules=True)),
                           ("... a status schema that validates nothing", crd_variant(open_status=True))]:
            local.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd), kubeconfig=kubeconfig)
            wait_established(client.ApiextensionsV1Api(api))
            local.kubectl("delete", PLURAL, "--all", "-n", NAMESPACE, "--wait=true", kubeconfig=kubeconfig)
            for i in range(RUNS):
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL,
                                                       {**run, "metadata": {"name": f"w{i}"}})
                custom.patch_namespaced_custom_object_status(GROUP, VERSION, NAMESPACE, PLURAL, f"w{i}",
                                                             {"status": status})
            figures[label] = cpu_ms_per_write(patch_status)
            if crd == CRD:
                stored = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "w0")
    finally:
        local.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD), kubeconfig=kubeconfig)
        # Gone before it returns: deleting its Jobs and runs is work that
        # would disturb whatever is measured next.
        local.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=300s", kubeconfig=kubeconfig,
                      check=False)

    baseline = figures["a Job create (baseline)"]
    print(f"API server CPU per write, {WRITES} writes each, on an otherwise idle local cluster:")
    for label, ms in figures.items():
        print(f"  {label:<48}{ms:7.2f} ms  {ms / baseline:5.2f}x")
    print(f"a finished run as stored: {len(json.dumps(stored))} bytes, of which managedFields "
          f"{len(json.dumps(stored['metadata'].get('managedFields')))}")
    print(f"command: {sys.executable} tests/bench/scale_write_cost.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
