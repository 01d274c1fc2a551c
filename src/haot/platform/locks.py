"""Transaction-scoped locks on a key, for invariants that span rows which may not exist yet (the
cap on a guest's pending reservations: counting rows and inserting one must not interleave).

PostgreSQL takes an advisory lock held until the transaction ends. SQLite needs none: every write
transaction starts with ``BEGIN IMMEDIATE`` (``platform.db``), so writers run one at a time.
"""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import BigInteger, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

# Built once: on the booking path, building the expression cost more than running it.
_LOCK = select(func.pg_advisory_xact_lock(bindparam("p_lock", type_=BigInteger)))


def lock_number(namespace: str, key: uuid.UUID) -> int:
    """A signed 64-bit number for (namespace, key): what ``pg_advisory_xact_lock`` takes."""
    digest = hashlib.blake2b(namespace.encode() + key.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_for_transaction(session: AsyncSession, namespace: str, key: uuid.UUID) -> None:
    """Block until no other transaction holds (namespace, key); held until this one ends."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(_LOCK, {"p_lock": lock_number(namespace, key)})
