"""Names and labels of everything the operator creates for a run.

Names are deterministic (derived from the run's name only), so an operator
that restarts at any moment finds what it created before instead of creating
it twice. The CRD limits run names to 40 characters so every derived name
stays a valid DNS label (63) even with the Indexed Job pod suffix.
"""
from typing import Dict, Optional

GROUP = "mathtune.dev"
VERSION = "v1alpha1"
PLURAL = "mathfinetunes"
KIND = "MathFinetune"
API_VERSION = f"{GROUP}/{VERSION}"

LABEL_RUN = "mathtune.dev/run"
LABEL_STAGE = "mathtune.dev/stage"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mathtune-operator"
ANNOTATION_QUEUE = "scheduling.volcano.sh/queue-name"
# The Volcano PodGroup a pod belongs to.
ANNOTATION_POD_GROUP = "scheduling.k8s.io/group-name"
VOLCANO_GROUP, VOLCANO_VERSION = "scheduling.volcano.sh", "v1beta1"
POD_GROUP_API_VERSION = f"{VOLCANO_GROUP}/{VOLCANO_VERSION}"
# Kueue: the LocalQueue a Job is submitted to, and how its Workload names the Job.
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
LABEL_KUEUE_JOB_UID = "kueue.x-k8s.io/job-uid"
KUEUE_GROUP, KUEUE_VERSION = "kueue.x-k8s.io", "v1beta1"
# Which attempt of multi-node training a train Job is (builders._retry_policy).
ANNOTATION_ATTEMPT = "mathtune.dev/attempt"
# Kopf's own bookkeeping lives under our prefix, not kopf.zalando.org.
ANNOTATION_PREFIX = "mathtune.dev"

CONTAINER = "stage"
SPEC_MOUNT = "/etc/mathtune"
SPEC_FILE = f"{SPEC_MOUNT}/spec.json"
TERMINATION_LOG = "/dev/termination-log"
MSRUN_PORT = 8118


def job(run: str, stage: str) -> str:
    return f"{run}-{stage}"


def service(run: str) -> str:
    """Headless Service of multi-node training (pods' DNS subdomain)."""
    return f"{run}-train"


def pod_group(run: str, stage: str) -> str:
    """Volcano PodGroup of a stage's Job (builders.needs_pod_group): its name."""
    return job(run, stage)


def config_map(run: str) -> str:
    return f"{run}-spec"


def claim(run: str) -> str:
    return f"{run}-work"


def run_dir(data_path: str, run: str) -> str:
    return f"{data_path.rstrip('/')}/runs/{run}"


def labels(run: str, stage: Optional[str] = None) -> Dict[str, str]:
    out = {LABEL_RUN: run, LABEL_MANAGED_BY: MANAGED_BY, "app.kubernetes.io/name": "mathtune"}
    if stage:
        out[LABEL_STAGE] = stage
    return out


# MathFinetuneSweep: its kind, and how its trials (MathFinetunes) name it.
SWEEP_KIND, SWEEP_PLURAL = "MathFinetuneSweep", "mathfinetunesweeps"
LABEL_SWEEP = "mathtune.dev/sweep"
LABEL_TRIAL = "mathtune.dev/trial"
ANNOTATION_PARAMS = "mathtune.dev/params"
# On a trial early stopping suspended: why. The run object is the record, so a
# pass that dies after suspending it still finds the trial pruned.
ANNOTATION_PRUNED = "mathtune.dev/pruned"


def trial(sweep: str, number: int) -> str:
    """A sweep's trial n: its MathFinetune's name (the CRD keeps sweep names short enough)."""
    return f"{sweep}-{number}"
