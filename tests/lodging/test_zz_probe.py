import pytest
import httpx
from tests.lodging.factories import Actor

@pytest.mark.parametrize("i", range(5))
async def test_bare(app_client: httpx.AsyncClient, i: int) -> None:
    pass

@pytest.mark.parametrize("i", range(5))
async def test_with_host(host: Actor, i: int) -> None:
    pass
