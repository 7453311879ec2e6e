"""IdentityService: tokens, users and dashboard sessions, and the identities they stand for.

Secrets are shown once and stored only as SHA-256 digests (tokens, sessions) or argon2id hashes
(passwords, through the PasswordHasher port). ``authenticate`` turns a bearer token into the
``Identity`` the services decide with; ``session_identity`` does the same for a dashboard
session.
"""

from __future__ import annotations

import hmac
import math
import uuid
from datetime import datetime, timedelta

import attrs

from farm_domain.access import PEOPLE, AccessPolicy, Identity, Permission, Role
from farm_domain.audit import record
from farm_domain.credentials import (
    AGENT_TOKEN_PREFIX,
    Session,
    Token,
    User,
    agent_token_name,
    digest,
)
from farm_domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    ValidationError,
)
from farm_domain.ports import (
    Clock,
    CreateCounter,
    PasswordHasher,
    Secrets,
    UnitOfWork,
    UnitOfWorkFactory,
)

TOKEN_PREFIX = "farm_"
BOOTSTRAP_TOKEN_NAME = "admin"
SESSION_LIFETIME = timedelta(hours=12)
MAX_EXPIRES_DAYS = 3650
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_NAME = 64
# Longer than any secret Secrets makes; anything longer is refused before it is hashed.
MAX_SECRET = 256

INVALID_CREDENTIAL = "invalid or expired credential"
WRONG_LOGIN = "wrong name or password"


def _shown(name: str) -> str:
    """A name as messages quote it: bounded, whatever a client sent."""
    return name if len(name) <= MAX_NAME else name[:MAX_NAME] + "..."


def _name(value: str, what: str) -> str:
    if (
        not 1 <= len(value) <= MAX_NAME
        or not value.isprintable()
        or any(c.isspace() for c in value)
    ):
        raise ValidationError(
            f"{_shown(value)!r} is not a valid {what} name: 1 to {MAX_NAME} printable "
            "characters, no spaces",
            field="name",
        )
    if value.startswith(AGENT_TOKEN_PREFIX):
        raise ValidationError(
            f"{what} names starting with {AGENT_TOKEN_PREFIX!r} are reserved for agents",
            field="name",
        )
    return value


def _password(value: str) -> str:
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValidationError(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password"
        )
    return value


def _person(role: Role) -> Role:
    if role not in PEOPLE:
        names = ", ".join(r.value for r in PEOPLE)
        raise ValidationError(f"a user's role is one of {names}", field="role")
    return role


class IdentityService:
    """Tokens, users and sessions: who may act on the farm, and as whom."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        secrets: Secrets,
        hasher: PasswordHasher,
        failed_logins: CreateCounter | None = None,
    ) -> None:
        """``failed_logins`` counts failed logins per user name and per address, against the
        farm's allowance (None: no limit)."""
        self._uow = uow
        self._clock = clock
        self._secrets = secrets
        self._hasher = hasher
        self._failed_logins = failed_logins
        self._policy = AccessPolicy()
        self._dummy_hash: str | None = None

    # -- tokens ------------------------------------------------------------------------------

    def create_token(
        self, actor: Identity, role: Role, name: str, expires_days: int | None = None
    ) -> tuple[Token, str]:
        """A new token and its secret (shown once). Raises Forbidden (not an admin),
        ValidationError (name, role ``agent``, expiry) and Conflict (a usable or expired token
        has this name; a revoked one's name may be taken again)."""
        self._policy.require(actor, Permission.ADMINISTER)
        _name(name, "token")
        if role is Role.AGENT:
            raise ValidationError(
                "agent credentials are issued when an agent enrolls (use an agent-join token)",
                field="role",
            )
        if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
            raise ValidationError(
                f"a token expires in 1 to {MAX_EXPIRES_DAYS} days", field="expires"
            )
        now = self._clock.now()
        expires = None if expires_days is None else now + timedelta(days=expires_days)
        token = Token(name=name, role=role, created=now, expires=expires)
        with self._uow() as uow:
            existing = uow.tokens.get(name)
            if existing is not None:
                if existing.revoked is None:
                    raise Conflict(f"a token named {name} exists")
                uow.tokens.delete(name)
            secret = self._add_token(uow, token)
            record(uow, actor, now, "token.create", f"token:{name}", after=_shown_token(token))
            uow.commit()
        return token, secret

    def tokens(self, actor: Identity) -> list[Token]:
        """Every token by name (agents' included), never a secret. Raises Forbidden."""
        self._policy.require(actor, Permission.ADMINISTER)
        with self._uow(read_only=True) as uow:
            return uow.tokens.query()

    def revoke_token(self, actor: Identity, name: str) -> Token:
        """Raises Forbidden and NotFound (no such token, or revoked already)."""
        self._policy.require(actor, Permission.ADMINISTER)
        with self._uow() as uow:
            token = uow.tokens.get(name)
            if token is None or token.revoked is not None:
                raise NotFound(f"no token named {_shown(name)} to revoke")
            now = self._clock.now()
            uow.tokens.revoke(name, now)
            record(uow, actor, now, "token.revoke", f"token:{name}", before=_shown_token(token))
            uow.commit()
        return attrs.evolve(token, revoked=now)

    def _add_token(self, uow: UnitOfWork, token: Token) -> str:
        secret = TOKEN_PREFIX + self._secrets.random_token()
        uow.tokens.add(token, digest(secret))
        return secret

    # -- agents' own credentials --------------------------------------------------------------

    def issue_agent_credential(self, uow: UnitOfWork, agent_id: uuid.UUID, now: datetime) -> str:
        """Within the caller's unit of work (the registry enrolling an agent): replace the
        agent's credentials with a new one, ``agent:<id>``, role agent; returns its secret."""
        for previous in uow.tokens.of_agent(agent_id):
            uow.tokens.delete(previous.name)
        name = agent_token_name(agent_id)
        if uow.tokens.get(name) is not None:  # not bound to the agent, yet named after it
            uow.tokens.delete(name)
        # The enrollment's event (agent.enroll) says it; the credential needs none of its own.
        return self._add_token(
            uow, Token(name=name, role=Role.AGENT, created=now, agent_id=agent_id)
        )

    def withdraw_agent_credentials(
        self, uow: UnitOfWork, agent_id: uuid.UUID, now: datetime
    ) -> int:
        """Within the caller's unit of work (an agent deleted): revoke the agent's usable
        credentials; returns how many."""
        revoked = 0
        for token in uow.tokens.of_agent(agent_id):
            if token.revoked is None:
                uow.tokens.revoke(token.name, now)
                revoked += 1
        return revoked

    def revoke_agent_credentials(self, actor: Identity, agent_id: uuid.UUID) -> int:
        """Shut an agent out until it enrolls again; returns how many credentials were
        revoked. Raises Forbidden (not a wrangler or admin) and NotFound (no usable credential
        of that agent)."""
        self._policy.require(actor, Permission.MANAGE_AGENTS)
        with self._uow() as uow:
            revoked = self.withdraw_agent_credentials(uow, agent_id, self._clock.now())
            if not revoked:
                raise NotFound(f"agent {agent_id} has no credential to revoke")
            record(
                uow, actor, self._clock.now(), "token.revoke", f"token:{agent_token_name(agent_id)}"
            )
            uow.commit()
        return revoked

    # -- authentication -----------------------------------------------------------------------

    def authenticate(self, secret: str, address: str | None = None) -> Identity:
        """The identity a bearer token stands for. Raises Unauthenticated (the same message
        for an unknown, revoked or expired token). One indexed read."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_SECRET:
            raise Unauthenticated(INVALID_CREDENTIAL)
        wanted = digest(secret)
        with self._uow(read_only=True) as uow:
            found = uow.tokens.by_digest(wanted)
        if found is None:
            raise Unauthenticated(INVALID_CREDENTIAL)
        token, stored = found
        if not hmac.compare_digest(stored, wanted) or not token.usable(self._clock.now()):
            raise Unauthenticated(INVALID_CREDENTIAL)
        return Identity(name=token.name, role=token.role, agent_id=token.agent_id, address=address)

    def bootstrap_admin(self) -> str | None:
        """On a farm nobody can administer yet (no usable admin token, no admin user): a new
        admin token, named ``admin``, whose secret is returned. Otherwise None."""
        now = self._clock.now()
        with self._uow() as uow:
            if any(t.role is Role.ADMIN and t.usable(now) for t in uow.tokens.query()):
                return None
            if any(u.role is Role.ADMIN for u in uow.users.query()):
                return None
            name = BOOTSTRAP_TOKEN_NAME
            taken = {t.name for t in uow.tokens.query() if t.revoked is None}
            suffix = 1
            while name in taken:
                suffix += 1
                name = f"{BOOTSTRAP_TOKEN_NAME}-{suffix}"
            if uow.tokens.get(name) is not None:
                uow.tokens.delete(name)  # revoked: its name may be taken again
            secret = self._add_token(uow, Token(name=name, role=Role.ADMIN, created=now))
            record(
                uow,
                Identity.master(),
                now,
                "token.create",
                f"token:{name}",
                after={"role": "admin"},
            )
            uow.commit()
        return secret

    # -- users ----------------------------------------------------------------------------------

    def add_user(self, actor: Identity, name: str, role: Role, password: str) -> User:
        """Raises Forbidden, ValidationError (name, a role that is not a person's, password
        length) and Conflict (the name is taken)."""
        self._policy.require(actor, Permission.ADMINISTER)
        _name(name, "user")
        _person(role)
        _password(password)
        hashed = self._hasher.hash_password(password)
        user = User(name=name, role=role, created=self._clock.now())
        with self._uow() as uow:
            if uow.users.get(name) is not None:
                raise Conflict(f"a user named {name} exists")
            uow.users.add(user, hashed)
            record(
                uow, actor, user.created, "user.create", f"user:{name}", after={"role": str(role)}
            )
            uow.commit()
        return user

    def set_password(self, actor: Identity, name: str, password: str) -> None:
        """An admin sets anybody's password, a person their own; ends the user's sessions.
        Raises Forbidden, ValidationError and NotFound."""
        own = actor.name == name and actor.role in PEOPLE and actor.agent_id is None
        if not own:
            self._policy.require(actor, Permission.ADMINISTER)
        _password(password)
        hashed = self._hasher.hash_password(password)
        with self._uow() as uow:
            if uow.users.get(name) is None:
                raise NotFound(f"no user named {_shown(name)}")
            uow.users.set_password(name, hashed)
            uow.sessions.delete_of_user(name)
            record(uow, actor, self._clock.now(), "user.password", f"user:{name}")
            uow.commit()

    def remove_user(self, actor: Identity, name: str) -> None:
        """Removes the user and ends their sessions. Raises Forbidden and NotFound."""
        self._policy.require(actor, Permission.ADMINISTER)
        with self._uow() as uow:
            if uow.users.get(name) is None:
                raise NotFound(f"no user named {_shown(name)}")
            uow.sessions.delete_of_user(name)
            uow.users.delete(name)
            record(uow, actor, self._clock.now(), "user.delete", f"user:{name}")
            uow.commit()

    def users(self, actor: Identity) -> list[User]:
        """Every user by name. Raises Forbidden."""
        self._policy.require(actor, Permission.ADMINISTER)
        with self._uow(read_only=True) as uow:
            return uow.users.query()

    # -- dashboard sessions -------------------------------------------------------------------

    def login(self, name: str, password: str, address: str | None = None) -> tuple[Session, str]:
        """A new session and its secret (the cookie's value). Raises Unauthenticated with the
        same message whether the name or the password is wrong; an unknown name costs the
        same password check, so timing does not tell either. Raises TooManyRequests, checking
        nothing, once the name or the address has failed too often (guessing passwords)."""
        counted = self._login_payers(name, address)
        self._refuse_guessing(counted)
        try:
            return self._login(name, password)
        except Unauthenticated:
            if self._failed_logins is not None:
                for payer in counted:
                    self._failed_logins.spend(payer)
            raise

    @staticmethod
    def _login_payers(name: str, address: str | None) -> tuple[str, ...]:
        # Per name: a guesser spread over many addresses; per address: one guessing many names.
        payers = [f"login-name:{name[:MAX_NAME]}"]
        if address:
            payers.append(f"login-address:{address}")
        return tuple(payers)

    def _refuse_guessing(self, payers: tuple[str, ...]) -> None:
        if self._failed_logins is None:
            return
        waits = [self._failed_logins.wait(payer) for payer in payers]
        longest = max((wait for wait in waits if wait is not None), default=None)
        if longest is not None:
            seconds = max(1, math.ceil(longest))
            raise TooManyRequests(
                f"too many failed logins: retry in {seconds} s", retry_after=seconds
            )

    def _login(self, name: str, password: str) -> tuple[Session, str]:
        found = None
        if len(name) <= MAX_NAME and len(password) <= MAX_PASSWORD:
            with self._uow(read_only=True) as uow:
                found = uow.users.with_password(name)
        if found is None:
            self._hasher.verify_password(self._dummy(), password[:MAX_PASSWORD])
            raise Unauthenticated(WRONG_LOGIN)
        user, hashed = found
        if not self._hasher.verify_password(hashed, password):
            raise Unauthenticated(WRONG_LOGIN)
        now = self._clock.now()
        secret = self._secrets.random_token()
        session = Session(
            user=user.name,
            csrf_token=self._secrets.random_token(),
            created=now,
            expires=now + SESSION_LIFETIME,
        )
        with self._uow() as uow:
            if uow.users.get(user.name) is None:  # removed meanwhile
                raise Unauthenticated(WRONG_LOGIN)
            uow.sessions.delete_expired(now)
            uow.sessions.add(session, digest(secret))
            # A login changes no one's rights: not an audit event (the access log has it).
            uow.commit()
        return session, secret

    def session_identity(self, secret: str, address: str | None = None) -> tuple[Identity, str]:
        """The identity of a dashboard session's secret, and the session's CSRF token. The
        role is the user's now. Raises Unauthenticated (unknown, expired, user removed)."""
        if len(secret) > MAX_SECRET:
            raise Unauthenticated(INVALID_CREDENTIAL)
        wanted = digest(secret)
        with self._uow(read_only=True) as uow:
            found = uow.sessions.by_digest(wanted)
            user = None if found is None else uow.users.get(found[0].user)
        if found is None or user is None:
            raise Unauthenticated(INVALID_CREDENTIAL)
        session, stored = found
        if not hmac.compare_digest(stored, wanted) or self._clock.now() >= session.expires:
            raise Unauthenticated(INVALID_CREDENTIAL)
        return Identity(name=user.name, role=user.role, address=address), session.csrf_token

    def logout(self, secret: str) -> None:
        """End the session (nothing happens for an unknown one)."""
        if len(secret) > MAX_SECRET:
            return
        with self._uow() as uow:
            uow.sessions.delete(digest(secret))
            uow.commit()

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash_password(self._secrets.random_token())
        return self._dummy_hash


def _shown_token(token: Token) -> dict[str, object]:
    """What the audit trail keeps of a token: never its secret or digest."""
    return {
        "role": str(token.role),
        "expires": None if token.expires is None else token.expires.isoformat(),
    }


def is_enrolled(uow: UnitOfWork, agent_id: uuid.UUID, now: datetime) -> bool:
    """Whether the agent holds a usable credential of its own."""
    return any(token.usable(now) for token in uow.tokens.of_agent(agent_id))


def refuse_unbound_for_enrolled(
    uow: UnitOfWork, actor: Identity, agent_id: uuid.UUID, now: datetime
) -> None:
    """An agent identity admitted by network (no credential of its own: a PyFarm agent) may
    act as any agent, except one that enrolled: that one speaks only with its credential, so
    that nobody on an anonymous network can take over an enrolled agent or read its key."""
    if speaks_unbound(actor) and is_enrolled(uow, agent_id, now):
        raise refused_unbound(agent_id)


def speaks_unbound(actor: Identity) -> bool:
    """An agent identity without a credential of its own (admitted by network)."""
    return actor.role is Role.AGENT and actor.agent_id is None


def refused_unbound(agent_id: uuid.UUID) -> Forbidden:
    return Forbidden(f"agent {agent_id} is enrolled: it must use its own credential")
