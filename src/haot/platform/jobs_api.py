"""Admin route to run a scheduled job now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from haot.platform.domain_docs import problems
from haot.platform.errors import InvalidInput
from haot.platform.jobs import parse_as_of
from haot.platform.web import API_PREFIX, AdminOnly, PlatformDep

router = APIRouter(prefix=API_PREFIX, tags=["jobs"])


@router.post("/admin/jobs/{name}/run", responses=problems(401, 403, 404, 422))
async def run_job(
    name: str,
    _: AdminOnly,
    platform: PlatformDep,
    as_of: Annotated[str | None, Query(max_length=40)] = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    if as_of and platform.settings.env == "production":
        raise InvalidInput("as_of is not accepted in production")
    moment = parse_as_of(as_of)
    result = await platform.jobs.run(name, as_of=moment, dry_run=dry_run)
    return {"job": name, "as_of": moment.isoformat(), "dry_run": dry_run, "result": result}
