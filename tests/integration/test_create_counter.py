"""Where the create budgets are counted: in each process, or shared through the queue's Redis."""

from __future__ import annotations

import uuid

import pytest

from farm_adapters.create_counter import LimitsCreateCounter
from farm_domain.budgets import CreateRate
from tests.support.databases import REDIS_URL, needs_redis

RATE = CreateRate(per_second=0.01, burst=2)


def spend_until_refused(counter: LimitsCreateCounter, payer: str) -> int:
    spent = 0
    while counter.wait(payer) is None:
        counter.spend(payer)
        spent += 1
        assert spent <= 10, "never refused"
    return spent


def test_without_redis_each_process_counts_its_own() -> None:
    one = LimitsCreateCounter.of(RATE, "sqlite:///queue.db")
    two = LimitsCreateCounter.of(RATE, "sqlite:///queue.db")
    assert spend_until_refused(one, "address:10.0.0.1") == 2
    wait = one.wait("address:10.0.0.1")
    assert wait is not None and 0 < wait <= RATE.window_seconds
    assert two.wait("address:10.0.0.1") is None
    assert one.wait("address:10.0.0.2") is None


@needs_redis
@pytest.mark.redis
def test_with_a_redis_queue_every_worker_shares_one_budget() -> None:
    assert REDIS_URL
    one = LimitsCreateCounter.of(RATE, REDIS_URL)
    two = LimitsCreateCounter.of(RATE, REDIS_URL)
    payer = f"credential:{uuid.uuid4()}"
    one.spend(payer)
    two.spend(payer)
    wait = one.wait(payer)
    assert wait is not None and 0 < wait <= RATE.window_seconds
    assert two.wait(payer) is not None
    assert one.wait(f"credential:{uuid.uuid4()}") is None


@needs_redis
@pytest.mark.redis
def test_farms_sharing_one_redis_count_apart() -> None:
    assert REDIS_URL
    here = LimitsCreateCounter.of(RATE, REDIS_URL, "farm-paris")
    there = LimitsCreateCounter.of(RATE, REDIS_URL, "farm-london")
    payer = f"credential:{uuid.uuid4()}"
    assert spend_until_refused(here, payer) == 2
    assert there.wait(payer) is None
    assert LimitsCreateCounter.of(RATE, REDIS_URL, "farm-paris").wait(payer) is not None


def test_an_unreachable_redis_leaves_creates_unlimited() -> None:
    counter = LimitsCreateCounter.of(RATE, "redis://127.0.0.1:1/0")  # nothing listens there
    for _ in range(RATE.burst + 1):
        counter.spend("address:10.0.0.1")
    assert counter.wait("address:10.0.0.1") is None
