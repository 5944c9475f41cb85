"""The command line the chart renders, the settings, and the controller's
bookkeeping of runs (what wakes a pass)."""
import pytest

from mathtune_operator import cli, runtime
from mathtune_operator.metrics import METRICS
from mathtune_operator.settings import Settings


def test_the_charts_flags_parse():
    args = cli.parse(["--standalone", "--namespace=team-a", "--namespace=team-b",
                      "--liveness=http://0.0.0.0:8081/healthz", "--metrics-port=9090", "--verbose",
                      "--workers=4", "--no-leader-election"])
    assert args.namespace == ["team-a", "team-b"] and args.metrics_port == 9090
    assert args.liveness == "http://0.0.0.0:8081/healthz" and args.verbose
    settings = cli.settings_from(args, Settings.from_env({"POD_NAMESPACE": "ops", "POD_NAME": "op-1"}))
    assert settings.workers == 4 and not settings.leader_election
    assert settings.lease_namespace == "ops" and settings.identity == "op-1"
    args = cli.parse(["--standalone", "--all-namespaces", "--debug", "--lease-namespace=x"])
    assert args.all_namespaces and args.namespace == [] and args.debug
    assert cli.settings_from(args, Settings.from_env({})).leader_election
    assert cli.settings_from(args, Settings.from_env({})).lease_namespace == "x"


def test_settings_refuse_nonsense_naming_the_variable():
    with pytest.raises(SystemExit, match="MATHTUNE_PROGRESS_INTERVAL='soon': expected a number of seconds"):
        Settings.from_env({"MATHTUNE_PROGRESS_INTERVAL": "soon"})
    with pytest.raises(SystemExit, match="MATHTUNE_RESYNC_INTERVAL='0'.*above 0"):
        Settings.from_env({"MATHTUNE_RESYNC_INTERVAL": "0"})
    with pytest.raises(SystemExit):
        cli.parse(["--workers=0"])


def test_a_run_is_queued_on_creation_and_spec_changes_not_on_its_own_status_patches():
    controller = runtime.Controller(Settings(), [])
    controller.seen(None, "ns", "r1", 1)
    assert controller.queue.get(timeout=0) == ("ns", "r1")
    controller.queue.done(("ns", "r1"))
    controller.seen("MODIFIED", "ns", "r1", 1)  # our own status patch
    assert controller.queue.get(timeout=0) is None
    controller.seen("MODIFIED", "ns", "r1", 2)  # the user changed the spec
    assert controller.queue.get(timeout=0) == ("ns", "r1")
    controller.queue.done(("ns", "r1"))
    controller.job_or_pod_changed("ns", "r1")  # its stage pod finished
    assert controller.queue.get(timeout=0) == ("ns", "r1")
    controller.queue.done(("ns", "r1"))
    METRICS.run_status.labels("ns", "r1", "Running").set(1)
    controller.seen("DELETED", "ns", "r1", 2)
    assert controller.known == {}
    assert b'run="r1"' not in METRICS.exposition()


def test_liveness_fails_when_work_waits_and_no_pass_ends_not_when_workers_are_busy():
    from mathtune_operator import informer, workqueue

    clock = {"now": 1000.0}
    controller = runtime.Controller(Settings(stall_after=120), [])
    controller.queue = workqueue.WorkQueue(clock=lambda: clock["now"])
    controller.jobs = controller.pods = informer.Informers([])
    controller.leading.set()
    controller.queue.add(("ns", "r1"))
    clock["now"] += 300  # the run has waited five minutes ...
    controller.last_pass_end = runtime.time.monotonic()  # ... behind workers that keep finishing passes
    assert controller.unhealthy() is None
    controller.last_pass_end -= 300  # and now no pass has ended for five minutes either
    assert "the loop is stuck" in (controller.unhealthy() or "")
    controller.leading.clear()  # a standby does no work: nothing to be stuck on
    assert controller.unhealthy() is None


def test_a_replica_that_stops_leading_forgets_what_it_wrote():
    """Its record of its last status patches would make an older watched
    body look current once another leader has written since."""
    controller = runtime.Controller(Settings(), [])
    controller.written[("ns", "r1")] = {"phase": "Running"}
    controller._started_leading()
    controller._stopped_leading()
    assert controller.written == {} and not controller.leading.is_set()
