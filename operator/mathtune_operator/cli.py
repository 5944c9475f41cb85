"""`mathtune-operator`: run the kopf operator with MathFinetune's handlers.

    mathtune-operator [--namespace NS ...| --all-namespaces] [--metrics-port 8080]
                      [--liveness http://0.0.0.0:8081/healthz] [--workers 8]
                      [--leader-election | --no-leader-election] [--lease-namespace NS] [--lease-name NAME]
                      [--standalone] [--verbose|--debug]
"""
import argparse
import asyncio
import logging
from typing import List, Optional

from .settings import Settings


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mathtune-operator", description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable); default: all namespaces")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus /metrics port (0: off)")
    p.add_argument("--liveness", default=None, help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz; "
                                                    "fails when the reconcile loop stops making progress")
    p.add_argument("--workers", type=int, default=Settings.workers,
                   help="reconcile passes of different runs at once (default %(default)s)")
    p.add_argument("--leader-election", action=argparse.BooleanOptionalAction, default=True,
                   help="reconcile only while holding a Lease, so replicas can stand by (default on)")
    p.add_argument("--lease-namespace", default=None,
                   help="namespace of the leader Lease (default: $POD_NAMESPACE, else 'default')")
    p.add_argument("--lease-name", default=Settings.lease_name, help="name of the leader Lease")
    p.add_argument("--standalone", action="store_true", default=True,
                   help="no kopf peering (always on: the Lease elects the leader; accepted for compatibility)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error(f"--workers {args.workers}: expected 1 or more")
    return args


def settings_from(args: argparse.Namespace, base: Optional[Settings] = None) -> Settings:
    """Flags over the environment's settings."""
    base = base or Settings.from_env()
    return base.with_(workers=args.workers, leader_election=args.leader_election, lease_name=args.lease_name,
                      lease_namespace=args.lease_namespace or base.lease_namespace)


def run(argv: Optional[List[str]] = None) -> None:
    args = parse(argv)
    import kopf

    # Importing main registers its kopf handlers. Only this direction: the
    # console script is cli:run, and main never imports cli (.importlinter).
    from . import main as _handlers  # noqa: F401 - registers the handlers
    from . import runtime

    runtime.LAUNCH.update(settings=settings_from(args), namespaces=list(args.namespace),
                          metrics_port=args.metrics_port)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    kopf.configure(debug=args.debug, verbose=args.verbose, log_prefix=True)
    logging.getLogger().setLevel(level)
    namespaces = list(args.namespace)
    asyncio.run(kopf.operator(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces or (),
        liveness_endpoint=args.liveness,
    ))
