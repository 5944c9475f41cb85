"""The pod runner's pure parts: Kubernetes' rules for env and command lines."""
import pytest

from hack.cluster import podrunner

POD = {"metadata": {"name": "p-1", "namespace": "ns", "uid": "u-1",
                    "labels": {"mathtune.dev/run": "r"},
                    "annotations": {"batch.kubernetes.io/job-completion-index": "2"}},
       "spec": {"nodeName": "cpu-0", "serviceAccountName": "sa"},
       "status": {"podIP": "10.0.0.7", "hostIP": "10.0.0.1"}}


def test_expand_follows_kubernetes_rules():
    env = {"A": "x", "B": "y"}
    assert podrunner.expand("$(A)-$(B)", env) == "x-y"
    assert podrunner.expand("$$(A)", env) == "$(A)"        # escaped
    assert podrunner.expand("$(MISSING)", env) == "$(MISSING)"  # left as written
    assert podrunner.expand("$A ${B}", env) == "$A ${B}"   # shell syntax is not Kubernetes'


def test_env_resolves_values_fields_and_refs_in_order():
    container = {"name": "c",
                 "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
                 "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "IDX", "valueFrom": {"fieldRef": {"fieldPath":
                                                       "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
                         {"name": "RUN", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['mathtune.dev/run']"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                         {"name": "BOTH", "value": "$(POD)/$(IDX)"},
                         {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}]}
    data = {("configMapRef", "cm"): {"x": "1"}, ("secretKeyRef", "s"): {"k": "secret"}}

    def lookup(kind, name, key):
        d = data.get((kind, name))
        return d if key is None else (d or {}).get(key)

    env = podrunner.container_env(POD, container, lookup)
    assert env == {"CM_x": "1", "POD": "p-1", "IDX": "2", "RUN": "r", "IP": "10.0.0.7", "KEY": "secret",
                   "BOTH": "p-1/2"}


def test_missing_required_ref_is_an_error():
    container = {"name": "c", "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}
    with pytest.raises(LookupError):
        podrunner.container_env(POD, container, lambda *a: None)


def test_command_line_joins_command_and_args_and_expands():
    c = {"name": "c", "command": ["mathtune-pipeline", "train"], "args": ["--node-rank", "$(JOB_COMPLETION_INDEX)"]}
    assert podrunner.command_line(c, {"JOB_COMPLETION_INDEX": "1"}) == ["mathtune-pipeline", "train", "--node-rank", "1"]
    with pytest.raises(ValueError):
        podrunner.command_line({"name": "c", "image": "x"}, {})


def test_log_lines_are_cri_format_and_fallback_reads_them_back(tmp_path):
    log = tmp_path / "c.log"
    log.write_text("".join(podrunner.cri_line("stdout", f"line {i}") for i in range(100)))
    first = log.read_text().splitlines()[0].split(" ", 3)
    assert first[1:] == ["stdout", "F", "line 0"] and first[0].endswith("Z")
    tail = podrunner.tail_message(log)
    assert tail.splitlines()[0] == "line 20" and tail.splitlines()[-1] == "line 99"
