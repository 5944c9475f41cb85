"""Prometheus metrics of the operator (prefix mathtune_, base units).

Per-run gauges carry namespace and run labels and are removed when the run
goes away; histograms and counters never carry the run name (cardinality).
"""
import math
import threading
from typing import Any, Dict, Iterable, Optional, Set, Tuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from .types import Obj

PHASES = ("Pending", "Running", "Suspended", "Succeeded", "Failed")
STAGE_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)


class Metrics:
    def __init__(self, registry: Optional[CollectorRegistry] = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        run = ["namespace", "run"]
        self.runs = Gauge("mathtune_runs", "Runs this operator watches, by current stage.", ["stage"], registry=r)
        self.run_status = Gauge("mathtune_run_status", "1 for the run's current phase, 0 for the others.",
                                run + ["phase"], registry=r)
        self.current_stage = Gauge("mathtune_run_current_stage", "1 for the run's current stage.",
                                   run + ["stage"], registry=r)
        self.stage_start = Gauge("mathtune_stage_start_time_seconds",
                                 "Unix time the running stage's Job was created.", run + ["stage"], registry=r)
        self.stage_duration = Histogram("mathtune_stage_duration_seconds", "Duration of finished stages.",
                                        ["stage", "result"], buckets=STAGE_BUCKETS, registry=r)
        self.stage_retries = Counter("mathtune_stage_retries", "Stage pods that failed and were retried.",
                                     ["stage"], registry=r)
        self.device_faults = Counter("mathtune_device_faults", "Training attempts stopped because an NPU they "
                                     "held went out of service (the node's mindx-dl-deviceinfo ConfigMap).",
                                     ["node"], registry=r)
        self.reconcile_errors = Counter("mathtune_reconcile_errors", "Reconcile passes that hit an error.",
                                        ["reason"], registry=r)
        self.train_loss = Gauge("mathtune_train_loss", "Latest training loss.", run, registry=r)
        self.train_step = Gauge("mathtune_train_step", "Latest training step within the epoch.", run, registry=r)
        self.train_epoch = Gauge("mathtune_train_epoch", "Current training epoch.", run, registry=r)
        self.train_progress = Gauge("mathtune_train_progress_ratio", "Share of training done (0-1).", run,
                                    registry=r)
        self.train_throughput = Gauge("mathtune_train_samples_per_second", "Training throughput.", run,
                                      registry=r)
        self.eval_f1 = Gauge("mathtune_eval_f1", "SQuAD F1 of the chosen (or best so far) epoch.", run, registry=r)
        self.eval_em = Gauge("mathtune_eval_em", "SQuAD EM of the chosen (or best so far) epoch.", run, registry=r)
        self.predict_accuracy = Gauge("mathtune_predict_accuracy", "Math accuracy (0-1), the careful reader's.",
                                      run, registry=r)
        self.predict_accuracy_contest_rule = Gauge(
            "mathtune_predict_accuracy_contest_rule",
            "Math accuracy (0-1) under the contest's rule (the last number of the output).", run, registry=r)
        self.gate_passed = Gauge("mathtune_quality_gate_passed", "1 when the chosen epoch passes the gate.", run,
                                 registry=r)
        self.stage_pod = Gauge("mathtune_stage_pod_info", "1 for each running stage pod (joins NPU metrics).",
                               run + ["stage", "pod"], registry=r)
        self.leader = Gauge("mathtune_operator_leader", "1 while this replica holds the leader Lease (reconciles).",
                            registry=r)
        self.reconcile_seconds = Histogram("mathtune_reconcile_duration_seconds", "Duration of one reconcile pass.",
                                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                           registry=r)
        self.queue_wait = Histogram("mathtune_workqueue_wait_seconds",
                                    "Seconds a run waited, ready, for a reconcile worker.",
                                    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                                    registry=r)
        sweep = ["namespace", "sweep"]
        self.sweep_trials = Gauge("mathtune_sweep_trials", "Trials of a sweep by state (Running, Succeeded, "
                                  "Infeasible, Failed, Pruned).", sweep + ["state"], registry=r)
        self.sweep_best = Gauge("mathtune_sweep_best_objective", "The objective of a sweep's best trial (one that "
                                "passed the gate).", sweep, registry=r)
        # Reconcile workers run passes of different runs at once.
        self._lock = threading.RLock()
        self._stage_of: Dict[Tuple[str, str], str] = {}
        self._pods: Dict[Tuple[str, str], Set[Tuple[str, str]]] = {}

    # -- per pass ---------------------------------------------------------------
    def observe_run(self, namespace: str, run: str, phase: str, stage: str, status: Obj,
                    start_unix: Optional[float]) -> None:
        with self._lock:
            key = (namespace, run)
            previous = self._stage_of.get(key)
            if previous and previous != stage:
                self.current_stage.remove(namespace, run, previous)
                try:
                    self.stage_start.remove(namespace, run, previous)
                except KeyError:
                    pass
            self._stage_of[key] = stage
            for p in PHASES:
                self.run_status.labels(namespace, run, p).set(1 if p == phase else 0)
            self.current_stage.labels(namespace, run, stage).set(1)
            if start_unix is not None and phase == "Running":
                self.stage_start.labels(namespace, run, stage).set(start_unix)
            self._recount()
            results = status.get("results") or {}
            progress = status.get("progress") or {}
            if progress.get("stage") == "train":
                # A NaN/Inf loss is kept in status by name (JSON has no such numbers).
                lost = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(str(progress.get("lossNonFinite")))
                self._set(self.train_loss, key, lost if lost is not None else progress.get("loss"))
                self._set(self.train_step, key, progress.get("step"))
                self._set(self.train_epoch, key, progress.get("epoch"))
                self._set(self.train_throughput, key, progress.get("samplesPerSecond"))
                if progress.get("percent") is not None:
                    self.train_progress.labels(*key).set(progress["percent"] / 100.0)
            self._set(self.eval_f1, key, results.get("f1"))
            self._set(self.eval_em, key, results.get("em"))
            self._set(self.predict_accuracy, key, results.get("mathAccuracy"))
            self._set(self.predict_accuracy_contest_rule, key, results.get("mathAccuracyContestRule"))
            if isinstance(results.get("gatePassed"), bool):
                self.gate_passed.labels(*key).set(1 if results["gatePassed"] else 0)

    def stage_pods(self, namespace: str, run: str, stage: str, pods: Iterable[str]) -> None:
        with self._lock:
            key = (namespace, run)
            wanted = {(stage, p) for p in pods}
            for old in self._pods.get(key, set()) - wanted:
                self.stage_pod.remove(namespace, run, *old)
            for stage_name, pod in wanted:
                self.stage_pod.labels(namespace, run, stage_name, pod).set(1)
            self._pods[key] = wanted

    @staticmethod
    def _set(gauge: Gauge, key: Tuple[str, str], value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            gauge.labels(*key).set(value)

    def _recount(self) -> None:
        counts: Dict[str, int] = {}
        for stage in self._stage_of.values():
            counts[stage] = counts.get(stage, 0) + 1
        for (stage,) in [tuple(s) for s in list(self.runs._metrics)]:
            if stage not in counts:
                self.runs.remove(stage)
        for stage, count in counts.items():
            self.runs.labels(stage).set(count)

    def forget_run(self, namespace: str, run: str) -> None:
        """The run is gone: drop every series that names it."""
        with self._lock:
            key = (namespace, run)
            self._stage_of.pop(key, None)
            self._pods.pop(key, None)
            for metric in (self.run_status, self.current_stage, self.stage_start, self.train_loss, self.train_step,
                           self.train_epoch, self.train_progress, self.train_throughput, self.eval_f1, self.eval_em,
                           self.predict_accuracy, self.predict_accuracy_contest_rule, self.gate_passed,
                           self.stage_pod):
                for labels in list(metric._metrics):
                    if tuple(labels[:2]) == key:
                        metric.remove(*labels)
            self._recount()

    def observe_sweep(self, namespace: str, sweep: str, counts: Obj, best: Optional[float]) -> None:
        with self._lock:
            for state in ("Running", "Succeeded", "Infeasible", "Failed", "Pruned"):
                self.sweep_trials.labels(namespace, sweep, state).set(int(counts.get(state.lower()) or 0))
            if best is None:
                if (namespace, sweep) in self.sweep_best._metrics:
                    self.sweep_best.remove(namespace, sweep)
            else:
                self.sweep_best.labels(namespace, sweep).set(float(best))

    def forget_sweep(self, namespace: str, sweep: str) -> None:
        with self._lock:
            for metric in (self.sweep_trials, self.sweep_best):
                for labels in list(metric._metrics):
                    if tuple(labels[:2]) == (namespace, sweep):
                        metric.remove(*labels)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


METRICS = Metrics()
