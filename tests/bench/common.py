"""Helpers shared by the benchmarks: run a command in its own process and measure
its wall time and peak RSS (per child, via wait4), and the contest-scale inputs."""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MATHTUNE_CACHE", Path.home() / ".cache" / "mathtune")) / "bench"
PIPELINE = [sys.executable, "-m", "mathtune_pipeline.cli"]
SEED000_QUOTAS = {"english": 6000, "add": 6000, "subtract": 6000, "multiply": 6000, "divide": 6000, "sqrt": 6000,
                  "power": 6000, "equation": 12000, "discount": 6000, "mean": 12000, "mass": 1000, "area": 6000,
                  "sales": 6000, "simplify": 450, "function": 12000}


def measure(cmd: Sequence[str], env=None) -> Dict[str, float]:
    """Wall seconds and peak RSS (MiB) of one command, in its own process."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode(errors="replace")
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{out[-2000:]}\n{err[-4000:]}")
    return {"seconds": wall, "rss_mib": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "stdout": out}


def median_of(runs: List[Dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def synth_file(rows: int = 809993, seed: int = 0) -> Path:
    """The contest-scale synthetic train.json, generated once and cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"synth-{rows}-{seed}.json"
    if not path.exists():
        tmp = path.with_suffix(".partial")
        subprocess.run(PIPELINE + ["synth", "--rows", str(rows), "--seed", str(seed), "--out", str(tmp)], check=True,
                       env=env_with_pipeline())
        tmp.replace(path)
    return path


def env_with_pipeline() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "pipeline"), env.get("PYTHONPATH")]))
    return env


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return f"{cpus} CPUs available, load average {load:.1f} at start"


def _stat_cpu_seconds(stat: str) -> float:
    """User + system CPU seconds from a /proc/<pid>/stat line (the command
    name, in parentheses, may hold spaces: fields count from its end)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def machine_busy_ticks() -> Tuple[int, int]:
    """The whole machine's (busy, total) CPU ticks since boot, all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def cpu_seconds_by_process() -> Dict[int, Tuple[str, float]]:
    """pid -> (command name, CPU seconds so far) of every running process."""
    out: Dict[int, Tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        out[int(entry.name)] = (stat[stat.index("(") + 1:stat.rindex(")")], _stat_cpu_seconds(stat))
    return out


def cpu_seconds_between(before: Dict[int, Tuple[str, float]],
                        after: Dict[int, Tuple[str, float]]) -> Dict[str, float]:
    """CPU seconds used between two cpu_seconds_by_process(), by command
    name; by pid first, as a kernel worker renames itself with its work.
    A process that ended in between is not counted."""
    used: Dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        used[name] = used.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    return used


def apiserver_pid() -> int:
    """The local cluster's kube-apiserver (one cluster at a time here)."""
    found = subprocess.run(["pgrep", "-f", "bin/kube-apiserver"], capture_output=True, text=True).stdout.split()
    if not found:
        raise SystemExit("no kube-apiserver process: is the local cluster up (make cluster)?")
    return int(found[0])


def settle_apiserver(quiet_cores: float = 0.25, window: float = 2.0, limit: float = 120.0) -> float:
    """Wait until the API server's CPU use over `window` seconds is below
    `quiet_cores` (a fresh cluster works for a while after it answers:
    controllers' first lists, a new CRD's OpenAPI); the seconds waited."""
    pid, start = apiserver_pid(), time.monotonic()
    while time.monotonic() - start < limit:
        before = proc_cpu_seconds(pid)
        time.sleep(window)
        if (proc_cpu_seconds(pid) - before) / window < quiet_cores:
            break
    return time.monotonic() - start


# -- the MathFinetune CRD on the local cluster (the cluster benchmarks) -----
CRD = REPO / "crds" / "mathtune.dev_mathfinetunes.yaml"
CRD_NAME = "mathfinetunes.mathtune.dev"


def crd_variant(strip_rules: bool = False, open_status: bool = False) -> Path:
    """The CRD file changed: without its CEL rules, or with a status schema
    that validates nothing (to measure what those cost)."""
    doc = yaml.safe_load(CRD.read_text())

    def strip(node: object) -> None:
        if isinstance(node, dict):
            node.pop("x-kubernetes-validations", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)
    root = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    if strip_rules:
        strip(doc)
    if open_status:
        root["properties"]["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    path = Path(tempfile.mkdtemp(prefix="bench-crd-")) / "crd.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def wait_established(extensions, limit: float = 60.0) -> None:
    """Until the API server serves the CRD as applied last."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        crd = extensions.read_custom_resource_definition(CRD_NAME, _request_timeout=10)
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            time.sleep(2)  # served a moment after Established
            return
        time.sleep(0.2)
    raise SystemExit(f"the CRD {CRD_NAME} was not Established within {limit:.0f} s")


class Goals:
    """A benchmark's goals: each printed as met or MISSED, and the exit code says whether all were met
    (`make bench` fails, naming the missed ones)."""

    def __init__(self, bench: str):
        self.bench = bench
        self.missed: List[str] = []

    def check(self, goal: str, met: bool) -> str:
        if not met:
            self.missed.append(goal)
        return f"{goal}: {'met' if met else 'MISSED'}"

    def exit_code(self) -> int:
        if self.missed:
            print(f"{self.bench}: goals MISSED: {'; '.join(self.missed)}", file=sys.stderr)
            return 1
        return 0
