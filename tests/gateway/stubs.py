"""What the gateway tests put behind nginx: one tiny HTTP server per routed process, and nginx.

A stub answers every request 200 with JSON naming itself and echoing what it received (the raw
request target, the request id, the forwarded headers, the body's length), so a test sees which
process a path reached and what the gateway passed on. Two paths behave differently:
``/api/v1/coupon-claims/stream`` streams two events (the JSON above, then ``done``), with
``hold_stream`` the second only once the test releases it; a query with ``sleep=N`` answers after
N seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from haot.gateway import ROUTED_CONTEXTS, render_gateway_config
from tests.support.services import free_port, unavailable

STREAM_PATH = "/api/v1/coupon-claims/stream"


def nginx_binary() -> str:
    """Debian's nginx (make services installs it): skip without it, fail under CI."""
    path = os.environ.get("HAOT_TEST_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(path, os.X_OK):
        unavailable("nginx", f"no nginx binary (make services installs it): {path}")
    return path


@dataclass
class Stub:
    """One upstream: ``name`` is the process it stands for."""

    name: str
    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    # Hold the stream's second event until the test lets it go; the first event is out.
    hold_stream: bool = False
    first_event_sent: asyncio.Event = field(default_factory=asyncio.Event)
    release_second_event: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (task := asyncio.current_task()) is not None:  # cancelled when the stub stops
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            seen = {
                "upstream": self.name,
                "method": method,
                "target": target,
                "request_id": headers.get("x-request-id"),
                "forwarded_for": headers.get("x-forwarded-for"),
                "forwarded_proto": headers.get("x-forwarded-proto"),
                "host": headers.get("host"),
                "body_bytes": len(body),
            }
            self.received.append(seen)
            if urlsplit(target).path == STREAM_PATH:
                await self._stream(writer, json.dumps(seen).encode())
                return
            if sleep := parse_qs(urlsplit(target).query).get("sleep"):
                await asyncio.sleep(float(sleep[0]))
            answer = json.dumps(seen).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"X-Request-ID: from-the-service\r\n"
                + f"Content-Length: {len(answer)}\r\n".encode()
                + b"Connection: close\r\n\r\n"
                + answer
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the stub stops
        finally:
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, seen: bytes) -> None:
        """Server-sent events, the body delimited by closing the connection. Deliberately without
        ``X-Accel-Buffering: no`` (the app sends it) and without chunked framing (nginx 1.22
        passes a chunked answer on chunk by chunk even when buffering): such an answer is held
        back by a buffering proxy, so only the gateway's own configuration lets it through."""
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.1)  # the first event in a read of its own, not with the head
        writer.write(b"event: claim\ndata: " + seen + b"\n\n")
        await writer.drain()
        self.first_event_sent.set()
        if self.hold_stream:
            await self.release_second_event.wait()
        writer.write(b"event: claim\ndata: done\n\n")
        await writer.drain()


@dataclass
class Gateway:
    """nginx running on ``port`` with the rendered configuration in ``runtime_dir``."""

    port: int
    runtime_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[dict[str, Any]]:
        path = self.runtime_dir / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def error_log(self) -> str:
        path = self.runtime_dir / "error.log"
        return path.read_text() if path.exists() else ""


@contextlib.asynccontextmanager
async def running_gateway(upstreams: Mapping[str, str], **options: Any) -> AsyncIterator[Gateway]:
    """nginx rendered by ``haot.gateway`` against ``upstreams``, in the foreground, as the
    launcher of ``make split`` runs it; stopped (SIGTERM, then SIGKILL) on the way out.

    Its runtime directory is one its workers can reach whoever they run as (started by root,
    nginx runs them as ``nobody``; pytest's own temporary directories are root's alone)."""
    binary = nginx_binary()
    runtime_dir = Path(tempfile.mkdtemp(prefix="haot-gateway-"))
    runtime_dir.chmod(0o755)
    port = free_port()
    settings: dict[str, Any] = {"rate_per_second": 10_000, "burst": 10_000, **options}
    config = render_gateway_config(
        upstreams, port=port, runtime_dir=runtime_dir, worker_processes=1, **settings
    )
    conf = runtime_dir / "nginx.conf"
    conf.write_text(config)
    process = subprocess.Popen(
        [binary, "-p", str(runtime_dir), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    gateway = Gateway(port=port, runtime_dir=runtime_dir, process=process)
    try:
        await _wait_until_healthy(gateway)
        yield gateway
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(runtime_dir, ignore_errors=True)


async def _wait_until_healthy(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=1.0) as client:
        for _ in range(100):
            if gateway.process.poll() is not None:
                stderr = gateway.process.stderr.read().decode() if gateway.process.stderr else ""
                raise AssertionError(
                    f"nginx exited with {gateway.process.returncode}: {stderr}{gateway.error_log()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{gateway.url}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError(f"nginx did not answer on {gateway.url}: {gateway.error_log()}")


@contextlib.asynccontextmanager
async def running_stubs() -> AsyncIterator[dict[str, Stub]]:
    stubs = {name: Stub(name) for name in ROUTED_CONTEXTS}
    for stub in stubs.values():
        await stub.start()
    try:
        yield stubs
    finally:
        for stub in stubs.values():
            await stub.stop()


def addresses(stubs: Mapping[str, Stub]) -> dict[str, str]:
    return {name: stub.address for name, stub in stubs.items()}


async def raw_request(port: int, target: str, method: str = "GET") -> tuple[int, bytes]:
    """A request whose target goes out byte for byte (an HTTP client would normalise ``..``):
    the status and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Connection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
