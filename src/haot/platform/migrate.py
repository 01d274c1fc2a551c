"""Run Alembic migrations against every database the configured contexts use."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config

from haot.platform.db import Databases
from haot.platform.settings import CONTEXTS, Settings


def alembic_config(url: str) -> Config:
    ini = resources.files("haot.migrations") / "alembic.ini"
    config = Config(str(ini))
    config.set_main_option("script_location", str(resources.files("haot.migrations")))
    config.set_main_option(
        "version_locations", str(resources.files("haot.migrations") / "versions")
    )
    config.attributes["url"] = url
    return config


def ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        from pathlib import Path

        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def migrate(
    settings: Settings, *, contexts: tuple[str, ...] = CONTEXTS, revision: str = "head"
) -> None:
    urls = sorted({*Databases(settings).distinct_urls(contexts), settings.database_url})
    for url in urls:
        ensure_sqlite_dir(url)
        command.upgrade(alembic_config(url), revision)
