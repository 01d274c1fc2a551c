"""The gateway of the split deployment: nginx's configuration, rendered from one template.

The template (``nginx.conf.template`` beside this file, shipped as package data) routes each path
to the process that serves it, the way the all-in-one app serves it (docs/gateway.md has the map),
answers ``/healthz`` itself and 404 for ``/internal/`` and ``/metrics``, injects ``X-Request-ID``,
limits each client address (``limit_req``), the body size and the timeouts, and answers its own
failures (404, 413, 429, 502, 504, ...) as problem+json. ``make split`` renders it with upstreams on
loopback ports; Kubernetes renders the same file with service names (``python -m haot.gateway``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from string import Template

from haot.platform.settings import CONTEXTS, Settings

WEB = "web"
# Every process the gateway routes to: each context, and the pages (``haot serve --context web``).
ROUTED_CONTEXTS: tuple[str, ...] = (*CONTEXTS, WEB)
# Jobs every process registers (each purges its own databases): through the gateway, this
# context's. The others run on schedule in their own worker, or by hand at their own address.
SHARED_JOBS_OWNER = "reservation"

TEMPLATE_NAME = "nginx.conf.template"
DEFAULT_MAX_BODY_BYTES: int = Settings.model_fields["max_body_bytes"].default
DEFAULT_WEBHOOK_MAX_BODY_BYTES: int = Settings.model_fields["webhook_max_body_bytes"].default
# Whose X-Forwarded-For names the client: the pages process calls the API through the gateway
# with the visitor's address there. On one machine (``make split``) that is loopback.
LOOPBACK: tuple[str, ...] = ("127.0.0.1", "::1")

# host:port (a name, IPv4 or [IPv6]) or unix:/path; nothing nginx would read as syntax.
_ADDRESS = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}|unix:/[^\s;{}\"'$]+")
_NETWORK = re.compile(r"[0-9A-Fa-f:.]+(?:/[0-9]{1,3})?")
_LOG_TARGET = re.compile(r"stderr|/dev/stdout|/dev/stderr")


class _Config(Template):
    """Only ``${UPPER_CASE}`` is a placeholder: every other ``$`` belongs to nginx."""

    pattern = r"""
    \$(?:
      (?P<escaped>(?!))|
      (?P<named>(?!))|
      \{(?P<braced>[A-Z][A-Z0-9_]*)\}|
      (?P<invalid>(?!))
    )
    """  # type: ignore[assignment]


def template_text() -> str:
    """The template as shipped (package data of ``haot.gateway``)."""
    return files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")


def render_gateway_config(
    upstreams: Mapping[str, str],
    *,
    port: int,
    runtime_dir: Path,
    rate_per_second: int,
    burst: int,
    listen_host: str = "127.0.0.1",
    trusted_proxies: Iterable[str] = LOOPBACK,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    webhook_max_body_bytes: int = DEFAULT_WEBHOOK_MAX_BODY_BYTES,
    connect_timeout_seconds: int = 2,
    send_timeout_seconds: int = 30,
    read_timeout_seconds: int = 30,
    stream_timeout_seconds: int = 3600,
    access_log: str | None = None,
    error_log: str | None = None,
    worker_processes: int | str = "auto",
) -> str:
    """nginx's configuration for the gateway, as text: write it to ``runtime_dir/nginx.conf`` and
    run ``nginx -p RUNTIME_DIR -c RUNTIME_DIR/nginx.conf -g 'daemon off;'`` (foreground, any
    user; ``runtime_dir`` must exist; nginx creates its temp directories in it).

    - ``upstreams``: the address of every name in ``ROUTED_CONTEXTS`` (each context and
      ``"web"``, the pages process), ``host:port`` (``127.0.0.1:8101``, ``identity:8000``) or
      ``unix:/path``; names are resolved when nginx starts.
    - ``port``, ``listen_host``: where the gateway listens (``0.0.0.0`` in a container).
    - ``rate_per_second``, ``burst``: requests per second per client address, and how many more
      may come at once before the gateway answers 429 (static files and ``/healthz`` are free).
    - ``trusted_proxies``: addresses or CIDR networks whose ``X-Forwarded-For`` names the client:
      where the pages process runs (loopback on one machine, its pods' network in Kubernetes);
      empty: nobody's.
    - ``max_body_bytes``, ``webhook_max_body_bytes``: the app's body limits
      (``HAOT_MAX_BODY_BYTES``, ``HAOT_WEBHOOK_MAX_BODY_BYTES``; their defaults by default).
    - timeouts in seconds: connecting to a service, sending it the request, waiting between two
      reads of its answer, and the same for the server-sent events stream.
    - ``access_log`` (JSON lines), ``error_log``: a path, or ``/dev/stdout`` / ``stderr``; by
      default ``access.log`` and ``error.log`` in ``runtime_dir``.

    Raises ``ValueError`` for a missing or unknown upstream or a value nginx would misread.
    """
    missing = [name for name in ROUTED_CONTEXTS if name not in upstreams]
    unknown = sorted(set(upstreams) - set(ROUTED_CONTEXTS))
    if missing or unknown:
        raise ValueError(
            f"gateway upstreams: missing {missing or 'none'}, unknown {unknown or 'none'} "
            f"(expected exactly {', '.join(ROUTED_CONTEXTS)})"
        )
    for name, address in upstreams.items():
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"gateway upstream {name}: {address!r} is not host:port or unix:/path")
    if not runtime_dir.is_absolute():
        raise ValueError(f"gateway runtime_dir must be absolute (nginx -p): {runtime_dir}")
    if not 0 < port < 65536:
        raise ValueError(f"gateway port out of range: {port}")
    if not _ADDRESS.fullmatch(f"{listen_host}:{port}"):
        raise ValueError(f"gateway listen host: {listen_host!r}")
    trusted = list(trusted_proxies)
    for network in trusted:
        if not _NETWORK.fullmatch(network):
            raise ValueError(f"gateway trusted proxy: {network!r} is not an address or network")
    numbers = {
        "rate_per_second": rate_per_second,
        "max_body_bytes": max_body_bytes,
        "webhook_max_body_bytes": webhook_max_body_bytes,
        "connect_timeout_seconds": connect_timeout_seconds,
        "send_timeout_seconds": send_timeout_seconds,
        "read_timeout_seconds": read_timeout_seconds,
        "stream_timeout_seconds": stream_timeout_seconds,
    }
    for key, value in numbers.items():
        if value < 1:
            raise ValueError(f"gateway {key} must be at least 1: {value}")
    if burst < 0:
        raise ValueError(f"gateway burst must not be negative: {burst}")
    if worker_processes != "auto" and not (
        isinstance(worker_processes, int) and worker_processes > 0
    ):
        raise ValueError(f"gateway worker_processes: {worker_processes!r} (a count or 'auto')")

    values = {
        "RUNTIME_DIR": _path(str(runtime_dir)),
        "LISTEN": f"{listen_host}:{port}",
        "WORKER_PROCESSES": str(worker_processes),
        "ACCESS_LOG": _log(access_log, runtime_dir / "access.log"),
        "ERROR_LOG": _log(error_log, runtime_dir / "error.log"),
        "TRUSTED_PROXIES": "\n".join(f"    set_real_ip_from {n};" for n in trusted)
        or "    # (no address is trusted to name the client)",
        "RATE_PER_SECOND": str(rate_per_second),
        "BURST": str(burst),
        "MAX_BODY_BYTES": str(max_body_bytes),
        "WEBHOOK_MAX_BODY_BYTES": str(webhook_max_body_bytes),
        "CONNECT_TIMEOUT": str(connect_timeout_seconds),
        "SEND_TIMEOUT": str(send_timeout_seconds),
        "READ_TIMEOUT": str(read_timeout_seconds),
        "STREAM_TIMEOUT": str(stream_timeout_seconds),
    }
    values.update({f"{name.upper()}_UPSTREAM": upstreams[name] for name in ROUTED_CONTEXTS})
    return _Config(template_text()).substitute(values)


def _path(path: str) -> str:
    """A path nginx reads inside double quotes."""
    if any(ch in path for ch in "\"'\\$;{}\n\r") or not path.startswith("/"):
        raise ValueError(f"gateway: unusable path {path!r} (absolute, no quotes, $, ; or braces)")
    return path


def _log(target: str | None, default: Path) -> str:
    if target is None:
        return f'"{_path(str(default))}"'
    if _LOG_TARGET.fullmatch(target):
        return f'"{target}"'
    return f'"{_path(target)}"'
