"""Properties of the value rules: what is valid is kept, what is not is refused."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farm_domain import validation
from farm_domain.enums import AgentState, OsClass, UseAddress
from farm_domain.errors import ValidationError

LABEL = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
HOSTNAME = st.lists(LABEL, min_size=1, max_size=4).map(".".join)


@given(HOSTNAME, st.booleans())
def test_valid_hostnames_are_kept_as_sent(name: str, trailing_dot: bool) -> None:
    value = name + ("." if trailing_dot else "")
    assert validation.hostname(value) == value


@given(HOSTNAME, st.sampled_from(["_", " ", "!", "é", ".."]))
def test_hostnames_with_foreign_characters_are_refused(name: str, bad: str) -> None:
    with pytest.raises(ValidationError, match="is not valid for hostname"):
        validation.hostname(name + bad + "x")


@pytest.mark.parametrize("value", ["", ".", "-a", "a-", "a" * 64, "a..b", "a b", "a\n", "a.\n"])
def test_hostname_edge_cases_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match=f"{value} is not valid for hostname"):
        validation.hostname(value)


@given(st.ip_addresses())
def test_ip_addresses_are_accepted_unless_multicast_or_unspecified(address) -> None:
    if address.is_multicast or address.is_unspecified:
        with pytest.raises(ValidationError):
            validation.ip_address(str(address))
    else:
        assert ipaddress.ip_address(validation.ip_address(str(address))) == address


@given(st.one_of(st.ip_addresses(v=4, network="127.0.0.0/8"), st.just(ipaddress.ip_address("::1"))))
def test_loopback_is_refused_only_when_configured(address) -> None:
    assert validation.ip_address(str(address), allow_loopback=True)
    with pytest.raises(ValidationError, match="loopback"):
        validation.ip_address(str(address), allow_loopback=False)


@given(st.text(max_size=40))
def test_text_that_is_no_address_is_refused(text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        with pytest.raises(ValidationError, match="is not valid for remote_ip"):
            validation.ip_address(text)


MAC = st.lists(st.integers(0, 255), min_size=6, max_size=6).flatmap(
    lambda octets: st.sampled_from([str.upper, str.lower]).map(
        lambda case: case(":".join(f"{o:02x}" for o in octets))
    )
)


@given(st.lists(MAC, max_size=6))
def test_mac_addresses_are_lowercased_and_deduplicated(macs: list[str]) -> None:
    assert validation.mac_addresses(macs) == {mac.lower() for mac in macs}


@given(st.lists(MAC, max_size=3), st.text(max_size=20).filter(lambda s: len(s) != 17))
def test_one_bad_mac_address_refuses_the_list(macs: list[str], bad: str) -> None:
    with pytest.raises(ValidationError, match="not a valid MAC address"):
        validation.mac_addresses([*macs, bad])


@pytest.mark.parametrize("enum", [AgentState, UseAddress, OsClass])
def test_enums_parse_from_names_and_codes_only(enum) -> None:
    for member in enum:
        assert enum.parse(member.label, "x") is member
        assert enum.parse(member.label.upper(), "x") is member
        assert enum.parse(member.code, "x") is member
    with pytest.raises(ValidationError, match="`bogus` is not a valid state"):
        enum.parse("bogus", "state")
    with pytest.raises(ValidationError):
        enum.parse(1, "x")


@given(st.integers())
def test_integer_ranges_are_inclusive(value: int) -> None:
    if 1024 <= value <= 65535:
        assert validation.integer("port", value, 1024, 65535) == value
    else:
        with pytest.raises(ValidationError, match="`port` must be between 1024 and 65535"):
            validation.integer("port", value, 1024, 65535)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


FREE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=40,
)


@given(FREE_JSON, st.integers(0, 40))
def test_free_json_is_refused_exactly_when_it_nests_too_deep(value: object, wrap: int) -> None:
    for _ in range(wrap):
        value = [value]
    if _depth(value) > validation.MAX_JSON_DEPTH:
        with pytest.raises(ValidationError, match="levels deep"):
            validation.json_shape("data", value, 10**9)
    else:
        validation.json_shape("data", value, 10**9)


@given(st.dictionaries(st.text(), st.text()))
def test_environments_refuse_exactly_what_no_process_can_hold(variables: dict[str, str]) -> None:
    holdable = len(variables) <= validation.MAX_ENVIRON_VARIABLES and all(
        name and "=" not in name and name.isprintable() and "\x00" not in value
        for name, value in variables.items()
    )
    if holdable:
        validation.environment("environ", variables)
    else:
        with pytest.raises(ValidationError):
            validation.environment("environ", variables)


def test_an_address_asked_again_gets_the_same_answer_for_each_field_and_setting() -> None:
    # Addresses are remembered (every heartbeat sends one): the answer still depends on the
    # field and on whether loopback is allowed, and a refusal is refused every time.
    for _ in range(2):
        assert validation.ip_address("0:0:0:0:0:0:0:1") == "::1"
        with pytest.raises(ValidationError, match="not valid for peer: this master refuses"):
            validation.ip_address("::1", field="peer", allow_loopback=False)
        with pytest.raises(ValidationError, match="224.0.0.1 is not valid for remote_ip"):
            validation.ip_address("224.0.0.1")
