"""The command line the chart renders, and the runner's bookkeeping of runs."""
from mathtune_operator import cli, runtime
from mathtune_operator.metrics import METRICS


def test_the_charts_flags_parse():
    args = cli.parse(["--standalone", "--namespace=team-a", "--namespace=team-b",
                      "--liveness=http://0.0.0.0:8081/healthz", "--metrics-port=9090", "--verbose"])
    assert args.namespace == ["team-a", "team-b"] and args.metrics_port == 9090
    assert args.liveness == "http://0.0.0.0:8081/healthz" and args.verbose
    args = cli.parse(["--standalone", "--all-namespaces", "--debug"])
    assert args.all_namespaces and args.namespace == [] and args.debug


def test_runner_wakes_on_new_runs_and_spec_changes_only():
    runner = runtime.Runner(interval=60)
    runner.seen(None, "ns", "r1", 1)
    assert runner.wake.is_set() and runner.known == {("ns", "r1"): 1}
    runner.wake.clear()
    runner.seen("MODIFIED", "ns", "r1", 1)  # our own status patch
    assert not runner.wake.is_set()
    runner.seen("MODIFIED", "ns", "r1", 2)  # the user changed the spec
    assert runner.wake.is_set()
    METRICS.run_status.labels("ns", "r1", "Running").set(1)
    runner.seen("DELETED", "ns", "r1", 2)
    assert runner.known == {}
    assert b'run="r1"' not in METRICS.exposition()
