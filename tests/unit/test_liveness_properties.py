"""Properties of the liveness rule: which agents the sweep polls (``poll_due``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from farm_domain.dispatch import DispatchPolicy, poll_due
from farm_domain.enums import AgentState, UseAddress
from farm_domain.scheduling import AgentContact
from tests.support.builders import dispatch_policy

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
SECONDS = st.floats(0, 10_000, allow_nan=False)
AGO = st.none() | SECONDS.map(lambda s: NOW - timedelta(seconds=s))
CONTACT = st.builds(
    AgentContact,
    id=st.just(uuid.UUID(int=1)),
    hostname=st.just("render01"),
    remote_ip=st.just("127.0.0.1"),
    port=st.just(50000),
    use_address=st.just(UseAddress.REMOTE),
    state=st.sampled_from(AgentState),
    disabled=st.booleans(),
    last_heard_from=AGO,
    last_polled=AGO,
    busy=st.booleans(),
)
POLICY = st.builds(
    dispatch_policy,
    agent_silence=st.floats(31, 5000),
    poll_busy_after=SECONDS,
    poll_idle_after=SECONDS,
    poll_offline_after=SECONDS,
)


def silence_of(agent: AgentContact) -> float | None:
    contact = agent.last_contact
    return None if contact is None else (NOW - contact).total_seconds()


@given(CONTACT, POLICY)
def test_every_agent_not_offline_silent_past_the_limit_is_polled(
    agent: AgentContact, policy: DispatchPolicy
) -> None:
    silent = silence_of(agent)
    if agent.state is not AgentState.OFFLINE and (silent is None or silent >= policy.agent_silence):
        assert poll_due(agent, NOW, policy)


@given(CONTACT, POLICY)
def test_an_agent_heard_from_recently_is_polled_only_by_a_shorter_pyfarm_setting(
    agent: AgentContact, policy: DispatchPolicy
) -> None:
    silent = silence_of(agent)
    if agent.state is AgentState.OFFLINE or silent is None or silent >= policy.agent_silence:
        return
    pyfarm = policy.poll_busy_after if agent.busy else policy.poll_idle_after
    assert poll_due(agent, NOW, policy) == (not agent.disabled and silent >= pyfarm)


@given(CONTACT, POLICY)
def test_offline_agents_are_polled_only_every_poll_offline_after(
    agent: AgentContact, policy: DispatchPolicy
) -> None:
    silent = silence_of(agent)
    if agent.state is AgentState.OFFLINE:
        assert poll_due(agent, NOW, policy) == (
            silent is None or silent >= policy.poll_offline_after
        )
