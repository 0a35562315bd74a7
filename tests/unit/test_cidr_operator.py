"""The `cidr` operator: an address in a network, whichever IP version either side is written in."""

from __future__ import annotations

import pytest

from responder.rules.operators import OPERATORS, validate_operand

cidr = OPERATORS["cidr"]


@pytest.mark.parametrize(("address", "network"), [
    ("::ffff:10.0.0.1", "10.0.0.0/8"),
    ("::FFFF:192.168.1.7", ["172.16.0.0/12", "192.168.0.0/16"]),
    ("::ffff:a00:1", "10.0.0.0/8"),
    ("10.0.0.1", "::ffff:10.0.0.0/104"),
    ("::ffff:10.0.0.1", "::ffff:10.0.0.0/104"),
    ("10.0.0.1", "10.0.0.0/8"),
    ("2001:db8::1", "2001:db8::/32"),
    ("::ffff:10.0.0.1", "::/0"),            # written as IPv6, it is an IPv6 address too
    ("10.0.0.1", "::/0"),                   # and written as IPv4 it is the same address: the same answer
    ("10.0.0.1", "::/64"),                  # a network holding ::ffff:0:0/96 holds every IPv4 address
    ("10.0.0.1", ["2001:db8::/32", "::/0"]),
])
def test_an_ipv4_mapped_address_matches_its_ipv4_network_both_ways(address: str, network: str | list[str]) -> None:
    """An IPv4-mapped address matches its IPv4 network both ways, and 10.0.0.1 is in ::/0."""
    assert cidr(address, network) is True


@pytest.mark.parametrize(("address", "network"), [
    ("::ffff:11.0.0.1", "10.0.0.0/8"),
    ("11.0.0.1", "::ffff:10.0.0.0/104"),
    ("::a00:1", "10.0.0.0/8"),              # IPv4-compatible (deprecated), not IPv4-mapped: another address
    ("64:ff9b::a00:1", "10.0.0.0/8"),       # NAT64 translation of 10.0.0.1: not the same host
    ("2001:db8::1", "10.0.0.0/8"),
    ("10.0.0.1", "2001:db8::/32"),
    ("10.0.0.1", "::/96"),                  # IPv4-compatible block (deprecated), not the IPv4-mapped one
    ("10.0.0.1", "::ffff:0:0:0/96"),        # IPv4-translated (SIIT), not the IPv4-mapped block
    ("::ffff:10.0.0.1", "2001:db8::/32"),
    ("2001:db8::1", "0.0.0.0/0"),
    ("fe80::1%eth0", "10.0.0.0/8"),
    ("not an ip", "10.0.0.0/8"),
    (None, "10.0.0.0/8"),
])
def test_an_address_of_the_other_version_is_outside_without_an_error(address: str | None, network: str) -> None:
    """An IPv6 address against an IPv4 network (and the reverse), or no address at all, is a plain no-match."""
    assert cidr(address, network) is False


def test_a_runbook_cidr_operand_is_still_validated() -> None:
    """An IPv4-mapped network is a valid operand; a malformed one is refused at load with the reason."""
    assert validate_operand("cidr", ["::ffff:10.0.0.0/104", "10.0.0.0/8"]) is None
    assert "invalid CIDR" in str(validate_operand("cidr", ["10.0.0.0/33"]))
