"""Events the identity context emits."""

from __future__ import annotations

from haot.platform.events import Event

USER_REGISTERED = "identity.user_registered"
USER_ROLE_CHANGED = "identity.user_role_changed"
USER_DEACTIVATED = "identity.user_deactivated"
USER_REACTIVATED = "identity.user_reactivated"
# Every access token of the user issued at or before ``before`` (epoch seconds) is void.
TOKENS_REVOKED = "identity.tokens_revoked"


def user_registered(user_id: str, role: str) -> Event:
    return Event(
        type=USER_REGISTERED, aggregate_id=user_id, payload={"user_id": user_id, "role": role}
    )


def user_role_changed(user_id: str, old_role: str, new_role: str) -> Event:
    return Event(
        type=USER_ROLE_CHANGED,
        aggregate_id=user_id,
        payload={"user_id": user_id, "old_role": old_role, "new_role": new_role},
    )


def user_active_changed(user_id: str, *, active: bool) -> Event:
    return Event(
        type=USER_REACTIVATED if active else USER_DEACTIVATED,
        aggregate_id=user_id,
        payload={"user_id": user_id},
    )


def tokens_revoked(user_id: str, before: float) -> Event:
    return Event(
        type=TOKENS_REVOKED,
        aggregate_id=user_id,
        payload={"user_id": user_id, "before": before},
    )
