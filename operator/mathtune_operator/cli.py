"""`mathtune-operator`: run the kopf operator with MathFinetune's handlers.

    mathtune-operator [--namespace NS ...| --all-namespaces] [--metrics-port 8080]
                      [--liveness http://0.0.0.0:8081/healthz] [--standalone] [--verbose|--debug]
"""
import argparse
import asyncio
import logging
from typing import List, Optional


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mathtune-operator", description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable); default: all namespaces")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    p.add_argument("--metrics-port", type=int, default=8080, help="Prometheus /metrics port (0: off)")
    p.add_argument("--liveness", default=None, help="kopf liveness endpoint, e.g. http://0.0.0.0:8081/healthz")
    p.add_argument("--standalone", action="store_true", default=True,
                   help="no peering with other kopf operators (always on; accepted for compatibility)")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--debug", action="store_true")
    return p.parse_args(argv)


def run(argv: Optional[List[str]] = None) -> None:
    args = parse(argv)
    import kopf

    from . import main as _handlers  # noqa: F401 - registers the handlers
    from . import runtime

    runtime.METRICS_PORT["port"] = args.metrics_port
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
