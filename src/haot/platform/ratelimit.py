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
