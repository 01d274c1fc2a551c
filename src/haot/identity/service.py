"""Identity use cases. Each runs in one unit of work and never commits half a change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from haot.identity import events
from haot.identity.domain import (
    digest_refresh_token,
    new_refresh_token,
    normalize_email,
    password_problem,
)
from haot.identity.models import RefreshToken, User
from haot.identity.repository import RefreshTokenRepository, UserRepository
from haot.identity.schemas import (
    AdminUserUpdate,
    PasswordChange,
    SignUp,
    TokenPair,
    UserRead,
    UserUpdate,
)
from haot.platform.auth import Revocations, Role, TokenSigner
from haot.platform.clock import utcnow
from haot.platform.errors import Conflict, InvalidInput, NotFound, Unauthorized
from haot.platform.ids import new_id
from haot.platform.uow import UnitOfWork, UnitOfWorkFactory
from haot.platform.web import Page, PageParams

log = structlog.get_logger(__name__)


class EmailTaken(Conflict):
    code = "email_taken"
    title = "An account with this email already exists"


class WeakPassword(InvalidInput):
    code = "weak_password"
    title = "Password does not meet the policy"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "Email or password is incorrect"


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    title = "Refresh token is invalid, expired or revoked"


class RefreshTokenReused(Unauthorized):
    code = "refresh_token_reused"
    title = "Refresh token was already used; the session has been revoked"


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "User not found"


def owasp_password_hasher() -> PasswordHasher:
    """argon2id with OWASP's recommended minimum (m=19 MiB, t=2, p=1)."""
    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


class IdentityService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        signer: TokenSigner,
        revocations: Revocations,
        hasher: PasswordHasher,
        refresh_ttl: timedelta,
    ) -> None:
        self._uow = uow
        self._signer = signer
        self._revocations = revocations
        self._hasher = hasher
        self._refresh_ttl = refresh_ttl
        self._decoy_hash: str | None = None

    async def _decoy(self) -> str:
        """A hash to verify against when the account does not exist, made once, off the loop."""
        if self._decoy_hash is None:
            self._decoy_hash = await self._hash(new_refresh_token())
        return self._decoy_hash

    async def _hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def _verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(check)

    async def sign_up(self, data: SignUp) -> UserRead:
        email = normalize_email(str(data.email))
        if problem := password_problem(data.password, email=email, name=data.name):
            raise WeakPassword(problem)
        password_hash = await self._hash(data.password)
        now = utcnow()
        async with self._uow() as uow:
            users = UserRepository(uow.session)
            if await users.get_by_email(email) is not None:
                raise EmailTaken()
            user = User(
                id=new_id(),
                email=email,
                password_hash=password_hash,
                name=data.name,
                phone=data.phone,
                birth_date=data.birth_date,
                gender=data.gender.value if data.gender else None,
                role=(Role.HOST if data.host else Role.USER).value,
                active=True,
                created_at=now,
                updated_at=now,
            )
            users.add(user)
            uow.emit(events.UserRegistered(user_id=user.id, role=user.role, name=user.name))
            try:
                await uow.commit()
            except IntegrityError as exc:
                raise EmailTaken() from exc
        return UserRead.model_validate(user)

    async def create_user(self, data: SignUp, role: Role) -> UserRead:
        """Operator path (``haot create-user``, seeding): any role, including ADMIN."""
        created = await self.sign_up(data)
        if role.value != created.role.value:
            return await self.admin_update(created.id, AdminUserUpdate(role=role))
        return created

    async def log_in(self, email: str, password: str) -> TokenPair:
        async with self._uow() as uow:
            user = await UserRepository(uow.session).get_by_email(normalize_email(email))
        if user is None:
            # Same work and same answer as a wrong password: no account enumeration by timing.
            await self._verify(await self._decoy(), password)
            raise InvalidCredentials()
        if not await self._verify(user.password_hash, password) or not user.active:
            raise InvalidCredentials()
        rehash = None
        if self._hasher.check_needs_rehash(user.password_hash):
            rehash = await self._hash(password)
        return await self._open_session(user.id, verified_hash=user.password_hash, rehash=rehash)

    async def _open_session(
        self, user_id: uuid.UUID, *, verified_hash: str, rehash: str | None
    ) -> TokenPair:
        """Issue the first pair of a session. The account is read again, locked, in the issuing
        transaction: verifying the password takes long enough for an admin to deactivate or
        demote the account, or for its owner to change the password, and a token issued from the
        stale read would outlive that change (its revocation stamp would predate the token)."""
        async with self._uow() as uow:
            user = await UserRepository(uow.session).get_for_update(user_id)
            if user is None or not user.active or user.password_hash != verified_hash:
                raise InvalidCredentials()
            if rehash is not None:
                user.password_hash = rehash
            pair = self._issue_pair(RefreshTokenRepository(uow.session), user, None)
            await uow.commit()
        return pair

    def _issue_pair(
        self, tokens: RefreshTokenRepository, user: User, family_id: uuid.UUID | None
    ) -> TokenPair:
        now = utcnow()
        refresh = new_refresh_token()
        tokens.add(
            RefreshToken(
                id=new_id(),
                user_id=user.id,
                family_id=family_id or new_id(),
                token_digest=digest_refresh_token(refresh),
                created_at=now,
                expires_at=now + self._refresh_ttl,
            )
        )
        access = self._signer.issue(user.id, Role(user.role), now=now)
        return TokenPair(
            access_token=access.token, refresh_token=refresh, expires_in=access.expires_in
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = utcnow()
        async with self._uow() as uow:
            tokens = RefreshTokenRepository(uow.session)
            stored = await tokens.get_by_digest(digest_refresh_token(refresh_token))
            if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
                raise InvalidRefreshToken()
            # Lock the account before the token (the order every account change takes), so a
            # concurrent role or password change waits for this rotation and revokes its token.
            user = await UserRepository(uow.session).get_for_update(stored.user_id)
            if not await tokens.mark_used(stored.id, now):
                # Reuse of a rotated token: whoever holds the family now is not to be trusted.
                await tokens.revoke_family(stored.family_id, now)
                await uow.commit()
                raise RefreshTokenReused()
            if user is None or not user.active:
                await tokens.revoke_family(stored.family_id, now)
                await uow.commit()
                raise InvalidRefreshToken()
            pair = self._issue_pair(tokens, user, stored.family_id)
            await uow.commit()
        return pair

    async def log_out(self, refresh_token: str) -> None:
        """Revoke the session the token belongs to; unknown tokens are accepted silently."""
        now = utcnow()
        async with self._uow() as uow:
            tokens = RefreshTokenRepository(uow.session)
            stored = await tokens.get_by_digest(digest_refresh_token(refresh_token))
            if stored is None:
                return
            await tokens.revoke_family(stored.family_id, now)
            await uow.commit()

    async def get(self, user_id: uuid.UUID) -> UserRead:
        async with self._uow() as uow:
            user = await UserRepository(uow.session).get(user_id)
        if user is None:
            raise UserNotFound()
        return UserRead.model_validate(user)

    async def get_by_email(self, email: str) -> UserRead:
        async with self._uow() as uow:
            user = await UserRepository(uow.session).get_by_email(normalize_email(email))
        if user is None:
            raise UserNotFound()
        return UserRead.model_validate(user)

    async def update_me(self, user_id: uuid.UUID, data: UserUpdate) -> UserRead:
        changes = data.model_dump(exclude_unset=True)
        async with self._uow() as uow:
            user = await UserRepository(uow.session).get_for_update(user_id)
            if user is None:
                raise UserNotFound()
            renamed = "name" in changes and changes["name"] != user.name
            for field, value in changes.items():
                setattr(user, field, value.value if hasattr(value, "value") else value)
            user.updated_at = utcnow()
            if renamed:
                uow.emit(events.UserRenamed(user_id=user.id, name=user.name))
            await uow.commit()
        return UserRead.model_validate(user)

    async def announce_names(self, *, batch: int = 500) -> int:
        """Announce every account's name again (``identity.user_renamed``), in batches of one
        transaction each: the contexts that keep names (the reservation context's guests) learn
        those of accounts registered before names were announced. Idempotent: a consumer keeps
        the last name it is told. Answers how many were announced."""
        announced = 0
        after: uuid.UUID | None = None
        while True:
            async with self._uow() as uow:
                statement = select(User.id, User.name).order_by(User.id).limit(batch)
                if after is not None:
                    statement = statement.where(User.id > after)
                rows = (await uow.session.execute(statement)).all()
                if not rows:
                    return announced
                for row in rows:
                    uow.emit(events.UserRenamed(user_id=row.id, name=row.name))
                await uow.commit()
            announced += len(rows)
            after = rows[-1].id

    async def change_password(self, user_id: uuid.UUID, data: PasswordChange) -> None:
        async with self._uow() as uow:
            user = await UserRepository(uow.session).get(user_id)
        if user is None:
            raise UserNotFound()
        if not await self._verify(user.password_hash, data.current_password):
            raise InvalidCredentials("Current password is incorrect")
        if problem := password_problem(data.new_password, email=user.email, name=user.name):
            raise WeakPassword(problem)
        new_hash = await self._hash(data.new_password)
        now = utcnow()
        async with self._uow() as uow:
            locked = await UserRepository(uow.session).get_for_update(user_id)
            if locked is None:
                raise UserNotFound()
            if locked.password_hash != user.password_hash:
                # Changed while we were verifying: the current password we checked is stale.
                raise InvalidCredentials("Current password is incorrect")
            locked.password_hash = new_hash
            locked.updated_at = now
            await RefreshTokenRepository(uow.session).revoke_all_for_user(user_id, now)
            before = self._revoke_access_tokens(uow, user_id)
            await uow.commit()
        await self._stamp(user_id, before)

    async def list_users(
        self, *, q: str | None, role: Role | None, active: bool | None, paging: PageParams
    ) -> Page[UserRead]:
        async with self._uow() as uow:
            rows, total = await UserRepository(uow.session).search(
                q=q,
                role=role.value if role else None,
                active=active,
                offset=paging.offset,
                limit=paging.size,
            )
        return Page[UserRead].of(rows, total, paging, UserRead.model_validate)

    async def admin_update(self, user_id: uuid.UUID, data: AdminUserUpdate) -> UserRead:
        now = utcnow()
        async with self._uow() as uow:
            user = await UserRepository(uow.session).get_for_update(user_id)
            if user is None:
                raise UserNotFound()
            revoke = False
            if data.role is not None and data.role.value != user.role:
                uow.emit(
                    events.UserRoleChanged(
                        user_id=user.id, old_role=user.role, new_role=data.role.value
                    )
                )
                user.role = data.role.value
                revoke = True
            if data.active is not None and data.active != user.active:
                user.active = data.active
                uow.emit(
                    events.UserReactivated(user_id=user.id)
                    if data.active
                    else events.UserDeactivated(user_id=user.id)
                )
            # A deactivation revokes even when the account is already inactive: an admin
            # repeating it revokes again. (An unchanged role revokes nothing: a form saved
            # without changes must not log the user out. The outbox retries every revocation.)
            revoke = revoke or data.active is False
            user.updated_at = now
            before = None
            if revoke:
                await RefreshTokenRepository(uow.session).revoke_all_for_user(user_id, now)
                before = self._revoke_access_tokens(uow, user_id)
            await uow.commit()
        if before is not None:
            await self._stamp(user_id, before)
        return UserRead.model_validate(user)

    @staticmethod
    def _revoke_access_tokens(uow: UnitOfWork, user_id: uuid.UUID) -> float:
        """Voids the user's access tokens issued until now (called holding the account lock,
        so no token is issued between now and the commit), through an event: the stamp is
        retried by the outbox until it lands, whatever happens to the direct stamp below."""
        before = round(utcnow().timestamp(), 6)
        uow.emit(events.TokensRevoked(user_id=user_id, before=before))
        return before

    async def _stamp(self, user_id: uuid.UUID, before: float) -> None:
        """The revocation at once, without waiting for the relay; if Redis refuses, the event
        stamps it when it is delivered."""
        try:
            await self._revocations.revoke_tokens_issued_before(
                user_id, datetime.fromtimestamp(before, UTC)
            )
        except Exception:
            log.warning("revocation_stamp_deferred", user_id=str(user_id))

    async def apply_revocation(self, user_id: uuid.UUID, before: float) -> None:
        """The ``tokens_revoked`` event's effect (idempotent: a stamp only ever moves forward)."""
        await self._revocations.revoke_tokens_issued_before(
            user_id, datetime.fromtimestamp(before, UTC)
        )
