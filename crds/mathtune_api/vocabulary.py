"""Names and bounds the API shares with the operator and the pipeline."""
from typing import Dict, Optional

# Bounds on every string and list keep the CEL cost estimate of the
# immutability rules (`self == oldSelf`) under the API server's budget.
SHORT, PATH, LONG = 253, 1024, 4096

URI = ("Where to read it: a path on the work volume (absolute, or relative to storage.dataPath), "
       "http(s)://, or s3:// (S3/OBS credentials come from the pipeline pod's environment).")
DNS_LABEL = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
TYPE_NAME = r"^[a-z][a-z0-9_]*$"
SHA256 = r"^([0-9a-f]{64})?$"
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"

STAGES = ("prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export")
# Set by the operator on every stage container: a user's env of the same
# name would be silently shadowed or break the stage.
RESERVED_ENV = ("POD_NAME", "POD_IP", "HOME", "PYTHONUNBUFFERED")
# The operator's own volumes and where they are mounted.
RESERVED_VOLUMES = ("work", "spec", "shm", "scratch", "ascend-driver")
RESERVED_MOUNTS = ("/etc/mathtune", "/dev/shm", "/tmp", "/usr/local/Ascend/driver")
NPU_RESOURCE = "huawei.com/Ascend910"


def rule(expr: str, message: str, field_path: Optional[str] = None, reason: Optional[str] = None) -> Dict[str, str]:
    """One x-kubernetes-validations entry: a CEL rule the API server checks."""
    out = {"rule": expr, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def immutable(field: str) -> Dict[str, str]:
    return rule("self == oldSelf",
                f"spec.{field} is immutable once the run exists: its stages' outputs depend on it; "
                f"create a new MathFinetune instead")
