"""``python -m haot.gateway``: print the gateway's nginx configuration (e.g. for a container).

    python -m haot.gateway --runtime-dir /var/run/haot-gateway --listen-host 0.0.0.0 --port 8080 \\
        --upstream identity=identity:8000 ... --upstream web=web:8000 \\
        --trusted-proxy 10.0.0.0/8 --access-log /dev/stdout --error-log stderr \\
        > /var/run/haot-gateway/nginx.conf
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from haot.gateway import LOOPBACK, ROUTED_CONTEXTS, render_gateway_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m haot.gateway", description=__doc__)
    parser.add_argument("--runtime-dir", type=Path, required=True, help="nginx -p (absolute)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help=f"once for each of {', '.join(ROUTED_CONTEXTS)}",
    )
    parser.add_argument("--rate-per-second", type=int, default=200)
    parser.add_argument("--burst", type=int, default=400)
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        default=None,
        metavar="ADDRESS_OR_CIDR",
        help="whose X-Forwarded-For names the client (default: loopback)",
    )
    parser.add_argument("--access-log", default=None)
    parser.add_argument("--error-log", default=None)
    args = parser.parse_args(argv)
    upstreams = dict(item.partition("=")[::2] for item in args.upstream)
    try:
        config = render_gateway_config(
            upstreams,
            port=args.port,
            runtime_dir=args.runtime_dir,
            rate_per_second=args.rate_per_second,
            burst=args.burst,
            listen_host=args.listen_host,
            trusted_proxies=LOOPBACK if args.trusted_proxy is None else args.trusted_proxy,
            access_log=args.access_log,
            error_log=args.error_log,
        )
    except ValueError as exc:
        print(f"haot.gateway: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
