"""Rate limits in Redis with GCRA (generic cell rate algorithm): one round trip, one key per
subject, smooth refill instead of fixed-window bursts at window edges."""

from __future__ import annotations

from dataclasses import dataclass

from haot.platform.errors import RateLimited
from haot.platform.metrics import RATE_LIMITED
from haot.platform.redis import Redis

# KEYS[1] = limiter key; ARGV[1] = emission interval (ms per request), ARGV[2] = burst (requests).
# Returns {allowed (1/0), retry_after_ms}. Uses the server clock so every app instance agrees.
_GCRA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local emission = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - emission * burst
if allow_at > now then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now))
return {1, 0}
"""


# Growing delays after failures (credential guessing). KEYS[1] = the subject's failure record.
_PENALTY_WAIT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local blocked_until = tonumber(redis.call('HGET', KEYS[1], 'until') or 0)
if blocked_until > now then return blocked_until - now end
return 0
"""
# ARGV: failures allowed before the first delay, first delay (ms), longest delay (ms), how long
# failures are remembered (ms). Each failure past the free ones doubles the delay.
_PENALTY_FAIL = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local failures = redis.call('HINCRBY', KEYS[1], 'n', 1)
local free = tonumber(ARGV[1])
if failures >= free then
  local delay = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ (failures - free))
  redis.call('HSET', KEYS[1], 'until', now + delay)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return failures
"""


@dataclass(frozen=True, slots=True)
class Delays:
    """Growing delays after failures: ``free`` failures cost nothing, then each one makes the
    subject wait ``first_seconds``, doubling up to ``longest_seconds``; forgotten after
    ``memory_seconds`` without a failure (or at once after a success)."""

    free: int = 5
    first_seconds: float = 1.0
    longest_seconds: float = 900.0
    memory_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` requests per ``period_seconds``, with bursts of up to ``limit``."""

    limit: int
    period_seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period_seconds <= 0:
            raise ValueError(f"invalid rate {self.limit}/{self.period_seconds}s")

    @property
    def emission_ms(self) -> float:
        return self.period_seconds * 1000 / self.limit


class RateLimiter:
    def __init__(self, redis: Redis, *, enabled: bool = True, prefix: str = "rl") -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA)
        self._penalty_wait = redis.register_script(_PENALTY_WAIT)
        self._penalty_fail = redis.register_script(_PENALTY_FAIL)
        self._enabled = enabled
        self._prefix = prefix

    async def hit(self, name: str, subject: str, rate: Rate) -> None:
        """Count one request of ``subject`` against limit ``name``; ``RateLimited`` when over."""
        if not self._enabled:
            return
        key = f"{self._prefix}:{name}:{{{subject}}}"
        allowed, retry_after_ms = await self._script(
            keys=[key], args=[rate.emission_ms, rate.limit]
        )
        if not int(allowed):
            RATE_LIMITED.labels(name).inc()
            raise RateLimited(retry_after=int(-(-int(retry_after_ms) // 1000)))

    def _penalty_key(self, name: str, subject: str) -> str:
        return f"{self._prefix}:fail:{name}:{{{subject}}}"

    async def wait_after_failures(self, name: str, subject: str) -> None:
        """``RateLimited`` while ``subject`` still serves the delay its last failure earned."""
        if not self._enabled:
            return
        wait_ms = int(await self._penalty_wait(keys=[self._penalty_key(name, subject)]))
        if wait_ms > 0:
            RATE_LIMITED.labels(f"{name}-delay").inc()
            raise RateLimited(retry_after=-(-wait_ms // 1000))

    async def failed(self, name: str, subject: str, delays: Delays) -> None:
        if not self._enabled:
            return
        await self._penalty_fail(
            keys=[self._penalty_key(name, subject)],
            args=[
                delays.free,
                int(delays.first_seconds * 1000),
                int(delays.longest_seconds * 1000),
                int(delays.memory_seconds * 1000),
            ],
        )

    async def succeeded(self, name: str, subject: str) -> None:
        if self._enabled:
            await self._redis.delete(self._penalty_key(name, subject))
