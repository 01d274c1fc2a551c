"""The rendered configuration: nginx accepts it, any user can run it, the renderer refuses what
nginx would misread."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from haot.gateway import ROUTED_CONTEXTS, render_gateway_config, template_text
from haot.gateway.__main__ import main as render_main
from tests.gateway.stubs import nginx_binary
from tests.support.services import free_port

LOOPBACK_UPSTREAMS = {name: f"127.0.0.1:{8101 + i}" for i, name in enumerate(ROUTED_CONTEXTS)}


def _render(runtime_dir: Path, **options: object) -> str:
    values: dict[str, object] = {"port": free_port(), "rate_per_second": 5, "burst": 10}
    values.update(options)
    return render_gateway_config(LOOPBACK_UPSTREAMS, runtime_dir=runtime_dir, **values)  # type: ignore[arg-type]


def _nginx_test(runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nginx_binary(), "-t", "-p", str(runtime_dir), "-c", str(runtime_dir / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text(_render(tmp_path))
    result = _nginx_test(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    assert "test is successful" in result.stderr


def test_nginx_accepts_the_container_variant(tmp_path: Path) -> None:
    """Logs to stdout and stderr, every address, a network trusted, no one trusted."""
    for trusted in (["10.0.0.0/8", "fd00::/8"], []):
        config = _render(
            tmp_path,
            listen_host="0.0.0.0",
            trusted_proxies=trusted,
            access_log="/dev/stdout",
            error_log="stderr",
            worker_processes=2,
        )
        (tmp_path / "nginx.conf").write_text(config)
        result = _nginx_test(tmp_path)
        assert result.returncode == 0, result.stderr


def test_every_placeholder_is_filled_and_every_nginx_variable_kept(tmp_path: Path) -> None:
    template = template_text()
    config = _render(tmp_path)
    assert not re.search(r"\$\{[A-Z]", config)
    for name in ROUTED_CONTEXTS:
        assert f"${{{name.upper()}_UPSTREAM}}" in template
        assert f"upstream {name:<11} {{ server {LOOPBACK_UPSTREAMS[name]};" in config
    for variable in ("$haot_upstream", "$request_id", "$binary_remote_addr", "$realip_remote_addr"):
        assert variable in config
    assert f'pid "{tmp_path}/nginx.pid";' in config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"upstreams": {k: v for k, v in LOOPBACK_UPSTREAMS.items() if k != "web"}}, "missing"),
        ({"upstreams": {**LOOPBACK_UPSTREAMS, "search": "127.0.0.1:1"}}, "unknown"),
        ({"upstreams": {**LOOPBACK_UPSTREAMS, "point": "127.0.0.1:1; evil"}}, "not host:port"),
        ({"upstreams": {**LOOPBACK_UPSTREAMS, "point": "point"}}, "not host:port"),
        ({"runtime_dir": Path("relative/dir")}, "absolute"),
        ({"runtime_dir": Path('/tmp/a"b')}, "unusable path"),  # noqa: S108
        ({"port": 0}, "port"),
        ({"rate_per_second": 0}, "rate_per_second"),
        ({"burst": -1}, "burst"),
        ({"trusted_proxies": ["10.0.0.0/8; allow all"]}, "trusted proxy"),
        ({"access_log": "/var/log/x.log; evil"}, "unusable path"),
        ({"listen_host": "0.0.0.0 default_server"}, "listen host"),
    ],
)
def test_the_renderer_refuses_what_nginx_would_misread(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {
        "upstreams": LOOPBACK_UPSTREAMS,
        "port": 8080,
        "runtime_dir": tmp_path,
        "rate_per_second": 5,
        "burst": 10,
    }
    values.update(change)
    with pytest.raises(ValueError, match=message):
        render_gateway_config(**values)  # type: ignore[arg-type]


def test_the_command_line_prints_the_same_configuration(tmp_path: Path) -> None:
    argv = ["--runtime-dir", str(tmp_path), "--port", "8123", "--rate-per-second", "7"]
    argv += ["--burst", "9"]
    for name, address in LOOPBACK_UPSTREAMS.items():
        argv += ["--upstream", f"{name}={address}"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert render_main(argv) == 0
    expected = render_gateway_config(
        LOOPBACK_UPSTREAMS, port=8123, runtime_dir=tmp_path, rate_per_second=7, burst=9
    )
    assert out.getvalue() == expected
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert render_main(argv[:-2]) == 2  # web's upstream left out
    assert "missing ['web']" in err.getvalue()


@contextlib.contextmanager
def _directory_for(user: pwd.struct_passwd) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="haot-gateway-"))
    try:
        os.chown(directory, user.pw_uid, user.pw_gid)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_user_without_privileges_runs_it_in_the_foreground() -> None:
    """nginx started by an ordinary user (``nobody`` when the tests run as root) writes nothing
    outside its runtime directory and answers."""
    ordinary = os.geteuid() != 0
    user = pwd.getpwuid(os.geteuid()) if ordinary else pwd.getpwnam("nobody")
    setpriv = shutil.which("setpriv")
    if not ordinary and setpriv is None:
        pytest.skip("running as root without setpriv: cannot become an ordinary user")
    with _directory_for(user) as runtime_dir:
        port = free_port()
        # Ports nothing listens on (8101... may be a split deployment running on this machine).
        nowhere = {name: f"127.0.0.1:{free_port()}" for name in ROUTED_CONTEXTS}
        conf = runtime_dir / "nginx.conf"
        conf.write_text(
            render_gateway_config(
                nowhere, port=port, runtime_dir=runtime_dir, rate_per_second=5, burst=5
            )
        )
        os.chown(conf, user.pw_uid, user.pw_gid)
        argv = [nginx_binary(), "-p", str(runtime_dir), "-c", str(conf), "-g", "daemon off;"]
        if not ordinary:
            assert setpriv is not None
            argv = [
                setpriv,
                f"--reuid={user.pw_uid}",
                f"--regid={user.pw_gid}",
                "--clear-groups",
                *argv,
            ]
        process = subprocess.Popen(argv, stderr=subprocess.PIPE)
        try:
            async with httpx.AsyncClient() as client:
                answer = None
                for _ in range(100):
                    with contextlib.suppress(httpx.TransportError):
                        answer = await client.get(f"http://127.0.0.1:{port}/healthz")
                        break
                    assert process.poll() is None, process.stderr.read() if process.stderr else ""
                    await asyncio.sleep(0.05)
                assert answer is not None
                assert answer.status_code == 200
                # A service that is not there: the gateway's own 502, as that user.
                assert (
                    await client.get(f"http://127.0.0.1:{port}/api/v1/points")
                ).status_code == 502
            assert (runtime_dir / "nginx.pid").exists()
            assert (runtime_dir / "access.log").exists()
            owners = {path.stat().st_uid for path in runtime_dir.iterdir()}
            assert owners == {user.pw_uid}
        finally:
            process.terminate()
            process.wait(10)
            if process.stderr is not None:
                process.stderr.close()
