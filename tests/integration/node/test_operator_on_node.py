"""The operator as users install it: the chart's Deployment, the operator
image, on the real node, in a namespace enforcing Pod Security "restricted";
its stage pods in the pipeline image on the same node."""
import json
import uuid

import pytest
import yaml
from kubernetes import client

from hack.cluster import demo, local
from tests.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(kubeconfig, k8s_api, tmp_path_factory):
    ns = f"node-op-{uuid.uuid4().hex[:5]}"
    stack = demo.Stack(kubeconfig, tmp_path_factory.mktemp("stack"), release=f"op-{ns[-5:]}", namespace=ns,
                       watch_namespace=ns)
    try:
        with stack:
            yield stack
    finally:
        stack.uninstall()
        client.CoreV1Api(k8s_api).delete_namespace(ns, propagation_policy="Background")


def _exec(stack, *command):
    return local.kubectl("exec", "-n", stack.namespace, f"deployment/{stack.deployment}", "--", *command,
                         kubeconfig=stack.kubeconfig, check=False)


def test_the_operator_runs_in_its_image_on_the_real_node(stack):
    pod = stack.operator_pod
    assert pod["spec"]["nodeName"] == local.REAL_NODE
    status = pod["status"]["containerStatuses"][0]
    assert status["ready"] is True and status["imageID"].startswith("sha256:")
    # The chart's default image name, which the node's image was tagged with.
    assert status["image"] == "docker.io/mathtune/operator:0.1.0"
    assert _exec(stack, "id", "-u").stdout.strip() == "10001"


def test_the_operator_cannot_write_its_root_filesystem(stack):
    wrote = _exec(stack, "python", "-c", "open('/written-by-operator', 'w')")
    assert wrote.returncode != 0
    assert "Read-only file system" in wrote.stderr, wrote.stderr


def test_a_failed_stage_reaches_the_run_status_with_its_own_error(stack, k8s_api):
    """prepare really runs in the pipeline image and exits 2 (bad input); the
    kubelet puts its result JSON in the termination message, the operator
    puts the stage's own error in the run's status."""
    ns = stack.namespace
    doc = yaml.safe_load(demo.EXAMPLE.read_text())
    doc["metadata"] = {"name": "no-data", "namespace": ns}
    doc["spec"]["data"]["source"]["uri"] = "/data/fixtures/absent.jsonl"
    local.kubectl("apply", "-f", "-", input=json.dumps(doc), kubeconfig=stack.kubeconfig)
    custom, core = client.CustomObjectsApi(k8s_api), client.CoreV1Api(k8s_api)

    def failed():
        run = custom.get_namespaced_custom_object("mathtune.dev", "v1alpha1", ns, "mathfinetunes", "no-data")
        return run if (run.get("status") or {}).get("phase") == "Failed" else None

    run = wait_for(failed, 240, "run no-data Failed")
    ready = next(c for c in run["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "absent.jsonl" in ready["message"], ready
    (pod,) = core.list_namespaced_pod(ns, label_selector="mathtune.dev/run=no-data,mathtune.dev/stage=prepare").items
    assert pod.spec.node_name == local.REAL_NODE
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 2
    result = json.loads(terminated.message)
    assert result["ok"] is False and "absent.jsonl" in result["error"]
    # Exit 2 is never retried: one pod only.
    logs = local.kubectl("logs", "-n", ns, "job/no-data-prepare", kubeconfig=stack.kubeconfig).stdout
    assert "absent.jsonl" in logs


def test_a_stage_whose_image_cannot_be_pulled_says_so(stack, k8s_api):
    """The kubelet cannot pull the image (nothing can be pulled here, as on a
    cluster with a misspelt image): Ready is False with the kubelet's reason."""
    ns = stack.namespace
    doc = yaml.safe_load(demo.EXAMPLE.read_text())
    doc["metadata"] = {"name": "no-image", "namespace": ns}
    doc["spec"]["images"] = {"pipeline": "registry.invalid/mathtune/pipeline-cpu:0.0.0"}
    local.kubectl("apply", "-f", "-", input=json.dumps(doc), kubeconfig=stack.kubeconfig)
    custom = client.CustomObjectsApi(k8s_api)

    def not_ready():
        run = custom.get_namespaced_custom_object("mathtune.dev", "v1alpha1", ns, "mathfinetunes", "no-image")
        ready = next((c for c in (run.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})
        return ready if ready.get("reason") in ("ErrImagePull", "ImagePullBackOff") else None

    ready = wait_for(not_ready, 180, "run no-image Ready=False with the kubelet's pull error")
    assert ready["status"] == "False" and "registry.invalid/mathtune/pipeline-cpu:0.0.0" in ready["message"]
