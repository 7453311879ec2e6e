"""IdentityService on fakes: tokens, agents' credentials, users, sessions and the first admin."""

from __future__ import annotations

import uuid
from datetime import timedelta

import attrs
import pytest

from farm_domain.access import Identity, Role
from farm_domain.credentials import digest
from farm_domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    ValidationError,
)
from farm_domain.identities import IdentityService
from tests.support.fakes.collaborators import FixedClock
from tests.support.fakes.identities import CountingSecrets, PlainPasswordHasher
from tests.support.fakes.unit_of_work import FakeUnitOfWorkFactory

ADMIN = Identity.local_operator("root")
WRANGLER = Identity("wendy", Role.WRANGLER)
ARTIST = Identity("alice", Role.ARTIST)


@attrs.define
class Identities:
    uow: FakeUnitOfWorkFactory = attrs.Factory(FakeUnitOfWorkFactory)
    clock: FixedClock = attrs.Factory(FixedClock)
    hasher: PlainPasswordHasher = attrs.Factory(PlainPasswordHasher)
    service: IdentityService = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.service = IdentityService(self.uow, self.clock, CountingSecrets(), self.hasher)

    def enroll(self, agent_id: uuid.UUID) -> str:
        with self.uow() as uow:
            secret = self.service.issue_agent_credential(uow, agent_id, self.clock.now())
            uow.commit()
        return secret


@pytest.fixture
def ids() -> Identities:
    return Identities()


# -- tokens -------------------------------------------------------------------------------------


def test_a_created_token_authenticates_as_its_name_and_role(ids: Identities) -> None:
    token, secret = ids.service.create_token(ADMIN, Role.ARTIST, "ci-bot")
    assert secret == "farm_secret-1"
    assert (token.name, token.role, token.created, token.expires) == (
        "ci-bot",
        Role.ARTIST,
        ids.clock.now(),
        None,
    )
    assert ids.service.authenticate(secret, "10.0.0.5") == Identity(
        "ci-bot", Role.ARTIST, address="10.0.0.5"
    )


def test_only_the_digest_of_a_token_is_stored(ids: Identities) -> None:
    _, secret = ids.service.create_token(ADMIN, Role.VIEWER, "v")
    stored = ids.uow.store.data.tokens["v"]
    assert stored[1] == digest(secret)
    assert secret not in repr(ids.uow.store.data)


@pytest.mark.parametrize("actor", [WRANGLER, ARTIST, Identity("a", Role.AGENT)])
def test_only_an_admin_manages_tokens(ids: Identities, actor: Identity) -> None:
    ids.service.create_token(ADMIN, Role.VIEWER, "v")
    with pytest.raises(Forbidden):
        ids.service.create_token(actor, Role.VIEWER, "w")
    with pytest.raises(Forbidden):
        ids.service.tokens(actor)
    with pytest.raises(Forbidden):
        ids.service.revoke_token(actor, "v")
    assert [t.name for t in ids.service.tokens(ADMIN)] == ["v"]
    assert ids.service.tokens(ADMIN)[0].revoked is None


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "with space", "tab\there", "nl\n", "agent:mine", "bell\x07"]
)
def test_token_names_are_bounded_and_printable(ids: Identities, name: str) -> None:
    with pytest.raises(ValidationError):
        ids.service.create_token(ADMIN, Role.VIEWER, name)
    assert ids.service.tokens(ADMIN) == []


def test_token_names_are_unique(ids: Identities) -> None:
    ids.service.create_token(ADMIN, Role.VIEWER, "v")
    with pytest.raises(Conflict):
        ids.service.create_token(ADMIN, Role.ADMIN, "v")


def test_a_revoked_tokens_name_may_be_taken_again(ids: Identities) -> None:
    _, old = ids.service.create_token(ADMIN, Role.VIEWER, "v")
    ids.service.revoke_token(ADMIN, "v")
    _, new = ids.service.create_token(ADMIN, Role.ARTIST, "v")
    assert ids.service.authenticate(new).role is Role.ARTIST
    with pytest.raises(Unauthenticated):
        ids.service.authenticate(old)


def test_agent_tokens_come_only_from_enrollment(ids: Identities) -> None:
    with pytest.raises(ValidationError, match="enroll"):
        ids.service.create_token(ADMIN, Role.AGENT, "a")
    _, secret = ids.service.create_token(ADMIN, Role.AGENT_JOIN, "join")
    assert ids.service.authenticate(secret).role is Role.AGENT_JOIN


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_expiry_is_bounded(ids: Identities, days: int) -> None:
    with pytest.raises(ValidationError):
        ids.service.create_token(ADMIN, Role.VIEWER, "v", expires_days=days)


def test_unknown_revoked_and_expired_tokens_are_refused_alike(ids: Identities) -> None:
    _, revoked = ids.service.create_token(ADMIN, Role.VIEWER, "revoked")
    _, expiring = ids.service.create_token(ADMIN, Role.VIEWER, "expiring", expires_days=1)
    ids.service.revoke_token(ADMIN, "revoked")
    ids.clock.advance(86400)
    messages = set()
    for secret in (revoked, expiring, "farm_unknown", "not-even-prefixed", "farm_" + "x" * 300):
        with pytest.raises(Unauthenticated) as refused:
            ids.service.authenticate(secret)
        messages.add(refused.value.message)
    assert messages == {"invalid or expired credential"}


def test_a_token_is_usable_until_it_expires(ids: Identities) -> None:
    _, secret = ids.service.create_token(ADMIN, Role.VIEWER, "v", expires_days=2)
    ids.clock.advance(2 * 86400 - 1)
    assert ids.service.authenticate(secret).name == "v"


def test_revoking_an_unknown_or_revoked_token_is_not_found(ids: Identities) -> None:
    with pytest.raises(NotFound):
        ids.service.revoke_token(ADMIN, "nope")
    ids.service.create_token(ADMIN, Role.VIEWER, "v")
    revoked = ids.service.revoke_token(ADMIN, "v")
    assert revoked.revoked == ids.clock.now()
    with pytest.raises(NotFound):
        ids.service.revoke_token(ADMIN, "v")
    assert ids.service.tokens(ADMIN)[0].revoked == ids.clock.now()


# -- agents' credentials ------------------------------------------------------------------------


def test_an_enrolled_agent_acts_as_itself(ids: Identities) -> None:
    agent_id = uuid.uuid4()
    secret = ids.enroll(agent_id)
    identity = ids.service.authenticate(secret)
    assert identity == Identity(f"agent:{agent_id}", Role.AGENT, agent_id=agent_id)


def test_enrolling_again_replaces_the_previous_credential(ids: Identities) -> None:
    agent_id = uuid.uuid4()
    first = ids.enroll(agent_id)
    second = ids.enroll(agent_id)
    with pytest.raises(Unauthenticated):
        ids.service.authenticate(first)
    assert ids.service.authenticate(second).agent_id == agent_id
    assert [t.name for t in ids.service.tokens(ADMIN)] == [f"agent:{agent_id}"]


def test_a_credential_issued_in_a_unit_of_work_that_rolls_back_does_not_exist(
    ids: Identities,
) -> None:
    with ids.uow() as uow:
        secret = ids.service.issue_agent_credential(uow, uuid.uuid4(), ids.clock.now())
    with pytest.raises(Unauthenticated):
        ids.service.authenticate(secret)


def test_revoking_an_agents_credentials_shuts_it_out(ids: Identities) -> None:
    agent_id, other = uuid.uuid4(), uuid.uuid4()
    secret = ids.enroll(agent_id)
    kept = ids.enroll(other)
    with pytest.raises(Forbidden):
        ids.service.revoke_agent_credentials(ARTIST, agent_id)
    assert ids.service.revoke_agent_credentials(WRANGLER, agent_id) == 1
    with pytest.raises(Unauthenticated):
        ids.service.authenticate(secret)
    assert ids.service.authenticate(kept).agent_id == other
    with pytest.raises(NotFound):
        ids.service.revoke_agent_credentials(ADMIN, agent_id)
    # Enrolling again lets it back in.
    assert ids.service.authenticate(ids.enroll(agent_id)).agent_id == agent_id


def test_a_deleted_agents_credentials_are_withdrawn_in_the_same_transaction(
    ids: Identities,
) -> None:
    agent_id = uuid.uuid4()
    secret = ids.enroll(agent_id)
    with ids.uow() as uow:
        assert ids.service.withdraw_agent_credentials(uow, agent_id, ids.clock.now()) == 1
        assert ids.service.withdraw_agent_credentials(uow, agent_id, ids.clock.now()) == 0
        uow.commit()
    with pytest.raises(Unauthenticated):
        ids.service.authenticate(secret)


# -- the first admin ----------------------------------------------------------------------------


def test_a_farm_without_an_admin_gets_an_admin_token_once(ids: Identities) -> None:
    ids.service.create_token(ADMIN, Role.WRANGLER, "w")
    secret = ids.service.bootstrap_admin()
    assert secret is not None
    assert ids.service.authenticate(secret) == Identity("admin", Role.ADMIN)
    assert ids.service.bootstrap_admin() is None


def test_an_admin_user_means_no_bootstrap_token(ids: Identities) -> None:
    ids.service.add_user(ADMIN, "boss", Role.ADMIN, "long enough")
    assert ids.service.bootstrap_admin() is None


def test_a_farm_whose_admin_tokens_are_all_revoked_gets_a_new_one(ids: Identities) -> None:
    first = ids.service.bootstrap_admin()
    assert first is not None
    ids.service.revoke_token(ADMIN, "admin")
    ids.service.create_token(ADMIN, Role.VIEWER, "admin-2")
    second = ids.service.bootstrap_admin()
    assert second is not None and second != first
    assert ids.service.authenticate(second).name == "admin"


def test_the_bootstrap_token_avoids_a_name_in_use(ids: Identities) -> None:
    ids.service.create_token(ADMIN, Role.VIEWER, "admin")
    secret = ids.service.bootstrap_admin()
    assert secret is not None
    assert ids.service.authenticate(secret) == Identity("admin-2", Role.ADMIN)


# -- users and sessions -------------------------------------------------------------------------


def test_users_are_added_by_admins_with_people_roles(ids: Identities) -> None:
    user = ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    assert (user.name, user.role, user.created) == ("alice", Role.ARTIST, ids.clock.now())
    assert ids.service.users(ADMIN) == [user]
    assert ids.uow.store.data.users["alice"][1] == "plain$correct horse"
    with pytest.raises(Forbidden):
        ids.service.add_user(WRANGLER, "bob", Role.ARTIST, "correct horse")
    with pytest.raises(Forbidden):
        ids.service.users(WRANGLER)
    for role in (Role.AGENT, Role.AGENT_JOIN):
        with pytest.raises(ValidationError):
            ids.service.add_user(ADMIN, "bob", role, "correct horse")
    for password in ("short", "x" * 1025):
        with pytest.raises(ValidationError):
            ids.service.add_user(ADMIN, "bob", Role.ARTIST, password)
    with pytest.raises(ValidationError):
        ids.service.add_user(ADMIN, "bad name", Role.ARTIST, "correct horse")
    with pytest.raises(Conflict):
        ids.service.add_user(ADMIN, "alice", Role.VIEWER, "correct horse")
    assert [u.name for u in ids.service.users(ADMIN)] == ["alice"]


def test_login_gives_a_session_with_the_users_identity_and_a_csrf_token(
    ids: Identities,
) -> None:
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    session, secret = ids.service.login("alice", "correct horse", "10.1.1.1")
    assert session.user == "alice"
    assert session.expires == ids.clock.now() + timedelta(hours=12)
    identity, csrf = ids.service.session_identity(secret, "10.1.1.1")
    assert identity == Identity("alice", Role.ARTIST, address="10.1.1.1")
    assert csrf == session.csrf_token and csrf != secret
    assert secret not in ids.uow.store.data.sessions


def test_a_wrong_password_and_an_unknown_name_look_the_same(ids: Identities) -> None:
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    messages = []
    for name, password in [("alice", "wrong horse"), ("nobody", "correct horse")]:
        before = ids.hasher.checks
        with pytest.raises(Unauthenticated) as refused:
            ids.service.login(name, password)
        assert ids.hasher.checks == before + 1  # the unknown name costs a check too
        messages.append(refused.value.message)
    assert messages == ["wrong name or password"] * 2
    assert ids.uow.store.data.sessions == {}


@attrs.define
class FailureCounts:
    """Counts spent per payer; a payer that spent ``allowed`` waits a minute."""

    allowed: int
    spent: dict[str, int] = attrs.Factory(dict)

    def wait(self, payer: str) -> float | None:
        return 60.0 if self.spent.get(payer, 0) >= self.allowed else None

    def spend(self, payer: str) -> None:
        self.spent[payer] = self.spent.get(payer, 0) + 1


def test_guessing_passwords_is_refused_per_name_and_per_address_checking_nothing() -> None:
    ids = Identities()
    counts = FailureCounts(allowed=3)
    ids.service = IdentityService(ids.uow, ids.clock, CountingSecrets(), ids.hasher, counts)
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    ids.service.add_user(ADMIN, "bob", Role.ARTIST, "battery staple")
    # A success spends nothing.
    ids.service.login("alice", "correct horse", "10.0.0.1")
    assert counts.spent == {}
    for guess in range(3):
        with pytest.raises(Unauthenticated):
            ids.service.login("alice", f"guess {guess}", f"10.0.0.{guess + 2}")
    checks = ids.hasher.checks
    # alice's name is spent, from any address, with the right password too; nothing checked.
    with pytest.raises(TooManyRequests) as refused:
        ids.service.login("alice", "correct horse", "10.9.9.9")
    assert refused.value.retry_after == 60 and "too many failed logins" in refused.value.message
    assert ids.hasher.checks == checks
    sessions = dict(ids.uow.store.data.sessions)
    # Another user logs in from an address that failed once.
    ids.service.login("bob", "battery staple", "10.0.0.2")
    # One address guessing many names is refused too, for names it never tried.
    for name in ("carol", "dave", "erin"):
        with pytest.raises(Unauthenticated):
            ids.service.login(name, "x", "10.5.5.5")
    with pytest.raises(TooManyRequests):
        ids.service.login("bob", "battery staple", "10.5.5.5")
    assert len(ids.uow.store.data.sessions) == len(sessions) + 1


def test_sessions_expire_after_twelve_hours(ids: Identities) -> None:
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    _, secret = ids.service.login("alice", "correct horse")
    ids.clock.advance(12 * 3600 - 1)
    ids.service.session_identity(secret)
    ids.clock.advance(1)
    with pytest.raises(Unauthenticated, match="invalid or expired credential"):
        ids.service.session_identity(secret)
    # The next login forgets it.
    ids.service.login("alice", "correct horse")
    assert len(ids.uow.store.data.sessions) == 1


def test_logout_ends_the_session(ids: Identities) -> None:
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    _, secret = ids.service.login("alice", "correct horse")
    _, other = ids.service.login("alice", "correct horse")
    ids.service.logout(secret)
    ids.service.logout("unknown")
    with pytest.raises(Unauthenticated):
        ids.service.session_identity(secret)
    assert ids.service.session_identity(other)[0].name == "alice"


def test_a_session_takes_the_users_role_as_it_is_now(ids: Identities) -> None:
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    _, secret = ids.service.login("alice", "correct horse")
    ids.service.remove_user(ADMIN, "alice")
    with pytest.raises(Unauthenticated):
        ids.service.session_identity(secret)
    assert ids.uow.store.data.sessions == {}


def test_passwords_are_set_by_admins_or_their_owner_and_end_sessions(ids: Identities) -> None:
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    ids.service.add_user(ADMIN, "bob", Role.VIEWER, "battery staple")
    _, secret = ids.service.login("alice", "correct horse")
    with pytest.raises(Forbidden):
        ids.service.set_password(Identity("bob", Role.VIEWER), "alice", "new password")
    with pytest.raises(Forbidden):  # a token named after a user is not that user's session
        ids.service.set_password(Identity("alice", Role.AGENT), "alice", "new password")
    ids.service.set_password(Identity("alice", Role.ARTIST), "alice", "new password")
    with pytest.raises(Unauthenticated):
        ids.service.session_identity(secret)
    with pytest.raises(Unauthenticated):
        ids.service.login("alice", "correct horse")
    ids.service.login("alice", "new password")
    ids.service.set_password(ADMIN, "alice", "admin chose")
    ids.service.login("alice", "admin chose")
    with pytest.raises(ValidationError):
        ids.service.set_password(ADMIN, "alice", "short")
    with pytest.raises(NotFound):
        ids.service.set_password(ADMIN, "nobody", "long enough")


def test_removing_users_is_for_admins(ids: Identities) -> None:
    ids.service.add_user(ADMIN, "alice", Role.ARTIST, "correct horse")
    with pytest.raises(Forbidden):
        ids.service.remove_user(WRANGLER, "alice")
    with pytest.raises(NotFound):
        ids.service.remove_user(ADMIN, "nobody")
    ids.service.remove_user(ADMIN, "alice")
    assert ids.service.users(ADMIN) == []
