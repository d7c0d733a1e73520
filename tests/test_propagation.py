"""CST_PROPAGATE_TO: which hosts outgoing calls may carry the operation id and trace context to."""

from __future__ import annotations

import pytest

from cst_chassis import ChassisConfigError
from cst_chassis.config import load_config
from cst_chassis.propagation import HostAllowList, parse_host_list

DEFAULT = HostAllowList()


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "127.0.0.1",
        "127.8.9.1",
        "::1",
        "[::1]",
        "2130706433",  # 127.0.0.1 as resolvers read it
        "payments",  # a Compose / Kubernetes service name
        "payments.shop.svc",
        "payments.shop.svc.cluster.local",
        "db.internal",
    ],
)
def test_by_default_loopback_and_cluster_local_names_are_internal(host: str) -> None:
    assert DEFAULT.allows(host)


@pytest.mark.parametrize(
    "host",
    [
        "api.stripe.com",
        "payments.example",
        "10.0.0.5",  # may be a NAT gateway or another company's VPC endpoint
        "192.168.1.10",
        "169.254.169.254",
        "8.8.8.8",
        "0x08080808",  # 8.8.8.8, not a single-label name
        "134744072",  # 8.8.8.8 again
        "2001:db8::1",
        "internal.example.com",
        "svc.example.com",
        "",
        None,
    ],
)
def test_by_default_everything_else_is_a_third_party(host: str | None) -> None:
    assert not DEFAULT.allows(host)


def test_listed_hosts_and_subdomains_are_allowed_and_nothing_else() -> None:
    hosts = parse_host_list(["payments.example.com", ".partner.example", "10.0.0.5"])
    assert hosts is not None
    assert hosts.allows("payments.example.com")
    assert hosts.allows("Payments.Example.Com.")
    assert hosts.allows("partner.example")
    assert hosts.allows("eu.api.partner.example")
    assert hosts.allows("10.0.0.5")
    assert not hosts.allows("evilpartner.example")
    assert not hosts.allows("example.com")
    assert not hosts.allows("localhost")  # "internal" was not listed


@pytest.mark.parametrize(
    ("value", "allowed", "refused"),
    [
        ("none", [], ["localhost", "payments"]),
        ("*", ["api.stripe.com", "localhost"], []),
        ("internal, api.example.com", ["payments", "api.example.com"], ["www.example.com"]),
        (["internal", ".example.com"], ["www.example.com", "localhost"], ["example.org"]),
    ],
)
def test_cst_propagate_to_is_read_from_the_environment_or_app_config(
    value: object, allowed: list[str], refused: list[str]
) -> None:
    environ = {"CST_PROPAGATE_TO": value} if isinstance(value, str) else {}
    app_config = {} if isinstance(value, str) else {"CST_PROPAGATE_TO": value}
    hosts = load_config("app", app_config, environ).propagate_to
    assert [host for host in allowed if hosts.allows(host)] == allowed
    assert [host for host in refused if hosts.allows(host)] == []


@pytest.mark.parametrize("value", ["https://api.example.com", "api.example.com/path", "a_b", 7])
def test_a_bad_cst_propagate_to_is_refused_naming_the_key(value: object) -> None:
    with pytest.raises(ChassisConfigError, match=r"^CST_PROPAGATE_TO="):
        load_config("app", {"CST_PROPAGATE_TO": value}, {})
