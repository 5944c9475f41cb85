"""A real Prometheus (Debian's package) for one test session, on loopback.

It scrapes only this machine: loopback targets, and pods of the local node
(whose pod network, 10.244.0.0/24, is a bridge on this machine). It keeps its
data in a temporary directory and is stopped when the test is done: nothing
outlives the session.
"""
import ipaddress
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml

from tests.harness.ports import free_port
from tests.unit.chart.promtool import INSTALL_HINT


# The local node's pod network (hack/node/common.sh POD_CIDR).
LOCAL_POD_NETWORK = ipaddress.ip_network("10.244.0.0/24")


class LocalPrometheus:
    def __init__(self, workdir: Path, targets: Dict[str, List[str]], rule_files: List[Path] = (),
                 scrape_interval: str = "1s"):
        for t in (t for ts in targets.values() for t in ts):
            host = t.rsplit(":", 1)[0]
            local_pod = ipaddress.ip_address(host) in LOCAL_POD_NETWORK if host[0].isdigit() else False
            assert host in ("127.0.0.1", "localhost") or local_pod, \
                f"scrape only this machine (loopback, the local node's pods), not {t}"
        self.binary = shutil.which("prometheus")
        if not self.binary:
            pytest.fail(f"prometheus not found: {INSTALL_HINT}", pytrace=False)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
               "rule_files": [str(p) for p in rule_files],
               "scrape_configs": [{"job_name": job, "static_configs": [{"targets": ts}]}
                                  for job, ts in targets.items()]}
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "LocalPrometheus":
        self.log = open(self.workdir / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1d",
             "--web.enable-lifecycle"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("prometheus did not start: " + (self.workdir / "prometheus.log").read_text()[-2000:])
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: Optional[float] = None) -> list:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def alerts_during(self, start: float, end: float) -> Dict[str, set]:
        """{alertname: states it was in} at any rule evaluation in [start, end]:
        pending counts, so an alert whose `for:` outlasts a run still shows
        that its expression held."""
        data = self.api("query_range", query="ALERTS", start=f"{start:.3f}", end=f"{end:.3f}", step="1s")
        seen: Dict[str, set] = {}
        for series in data["result"]:
            if any(float(v) == 1 for _, v in series["values"]):
                seen.setdefault(series["metric"]["alertname"], set()).add(series["metric"]["alertstate"])
        return seen

    def settled_after(self, exprs: List[str], step: float, timeout: float = 60) -> float:
        """Waits until every expr has a sample and the alert rules were
        evaluated after the newest of them; returns the end a range query
        with this step should use so its last point falls after them all
        (it may lie ahead: points ahead read the latest samples)."""
        deadline = time.monotonic() + timeout
        newest = 0.0
        for expr in exprs:
            while not (found := self.query(f"timestamp({expr})")):
                if time.monotonic() > deadline:
                    raise AssertionError(f"no sample of {expr} within {timeout}s")
                time.sleep(0.5)
            newest = max([newest] + [float(r["value"][1]) for r in found])

        def evaluated_after() -> bool:
            groups = self.api("rules")["groups"]
            return all(_unix(g["lastEvaluation"]) > newest for g in groups)
        while not evaluated_after():
            if time.monotonic() > deadline:
                raise AssertionError(f"the alert rules were not evaluated after {newest} within {timeout}s")
            time.sleep(0.5)
        return newest + step + 1

    def targets_up(self) -> Dict[str, str]:
        return {t["labels"]["job"]: t["health"] for t in self.api("targets")["activeTargets"]}

    def wait_up(self, job: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.targets_up().get(job) != "up":
            if time.monotonic() > deadline:
                raise AssertionError(f"target {job} not up: {self.api('targets')['activeTargets']}")
            time.sleep(0.5)


def _unix(rfc3339: str) -> float:
    """Prometheus's RFC 3339 times (nanosecond fractions) as Unix seconds."""
    import datetime

    head, _, frac = rfc3339.rstrip("Z").partition(".")
    whole = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.timezone.utc).timestamp()
    return whole + (float(f"0.{frac}") if frac else 0.0)
