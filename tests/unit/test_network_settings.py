"""Network settings: chosen at the first start from ranges no other instance holds, kept after."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from minik.home import Home
from minik.server import settings
from minik.server.claims import ClaimRegistry, candidates


def make_home(tmp_path: Path, name: str) -> Home:
    return Home.at(tmp_path / name).ensure()


@pytest.fixture
def registry(tmp_path: Path) -> ClaimRegistry:
    return ClaimRegistry(tmp_path / "claims")


def test_candidates_run_from_the_first_network_to_the_end_of_the_range():
    found = list(candidates("10.96.0.0/16", "10.96.0.0/12"))
    assert found[0] == "10.96.0.0/16" and found[-1] == "10.111.0.0/16" and len(found) == 16


def test_a_first_start_takes_the_defaults(tmp_path: Path, registry: ClaimRegistry):
    chosen = settings.resolve(make_home(tmp_path, "a"), claims=registry)
    assert chosen == settings.NetworkSettings("10.96.0.0/16", (30000, 32767), "127.0.0.1",
                                              "127.0.1.0/24", ())


def test_a_second_instance_takes_the_next_free_ranges(tmp_path: Path, registry: ClaimRegistry):
    settings.resolve(make_home(tmp_path, "a"), claims=registry)
    second = settings.resolve(make_home(tmp_path, "b"), claims=registry)
    assert (second.service_cidr, second.loadbalancer_range) == ("10.97.0.0/16", "127.0.2.0/24")


def test_a_restart_keeps_what_the_first_start_chose(tmp_path: Path, registry: ClaimRegistry):
    home = make_home(tmp_path, "a")
    settings.resolve(make_home(tmp_path, "other"), claims=registry)
    first = settings.resolve(home, node_address="127.0.0.7", node_port_range="31000-31100",
                             dns_upstream=("127.0.0.9:53",), claims=registry)
    assert settings.resolve(home, claims=registry) == first
    assert json.loads(home.settings_file.read_text())["serviceCIDR"] == "10.97.0.0/16"


def test_a_range_held_by_another_instance_is_refused(tmp_path: Path, registry: ClaimRegistry):
    settings.resolve(make_home(tmp_path, "a"), claims=registry)
    with pytest.raises(settings.SettingsError, match=re.escape("10.96.0.0/16 (held by")):
        settings.resolve(make_home(tmp_path, "b"), service_cidr="10.96.0.0/16", claims=registry)


def test_a_range_overlapping_another_instances_is_refused_and_skipped(tmp_path: Path,
                                                                      registry: ClaimRegistry):
    settings.resolve(make_home(tmp_path, "a"), service_cidr="10.97.128.0/17",
                     loadbalancer_range="127.0.1.0/25", claims=registry)
    with pytest.raises(settings.SettingsError, match=re.escape("10.96.0.0/12 (held by")):
        settings.resolve(make_home(tmp_path, "b"), service_cidr="10.96.0.0/12", claims=registry)
    third = settings.resolve(make_home(tmp_path, "c"), claims=registry)
    assert (third.service_cidr, third.loadbalancer_range) == ("10.96.0.0/16", "127.0.2.0/24")
    fourth = settings.resolve(make_home(tmp_path, "d"), claims=registry)
    assert fourth.service_cidr == "10.98.0.0/16"


def test_a_claim_whose_home_is_gone_is_taken_over(tmp_path: Path, registry: ClaimRegistry):
    gone = make_home(tmp_path, "gone")
    settings.resolve(gone, claims=registry)
    gone.settings_file.unlink()
    gone.root.rmdir()
    assert settings.resolve(make_home(tmp_path, "b"), claims=registry).service_cidr == \
        "10.96.0.0/16"


def test_a_claim_whose_home_names_another_range_is_stale(tmp_path: Path,
                                                         registry: ClaimRegistry):
    moved = make_home(tmp_path, "moved")
    settings.resolve(moved, claims=registry)
    settings.resolve(moved, service_cidr="10.100.0.0/16", claims=registry)
    assert registry.holder("service-cidr", "10.96.0.0/16") is None
    assert settings.resolve(make_home(tmp_path, "b"), claims=registry).service_cidr == \
        "10.96.0.0/16"


def test_release_drops_only_the_homes_own_claims(tmp_path: Path, registry: ClaimRegistry):
    a, b = make_home(tmp_path, "a"), make_home(tmp_path, "b")
    settings.resolve(a, claims=registry)
    settings.resolve(b, claims=registry)
    assert sorted(registry.release(str(a.root))) == ["loadbalancer-range-127.0.1.0_24",
                                                     "service-cidr-10.96.0.0_16"]
    assert registry.holder("service-cidr", "10.97.0.0/16") == str(b.root)


@pytest.mark.parametrize(("option", "value"), [
    ("service_cidr", "10.96.0.1/16"), ("service_cidr", "fd00::/64"),
    ("node_port_range", "32767-30000"), ("node_port_range", "a-b"),
    ("node_address", "localhost")])
def test_a_malformed_setting_is_refused_with_its_value(tmp_path: Path, registry: ClaimRegistry,
                                                       option: str, value: str):
    with pytest.raises(settings.SettingsError, match=value.split("-")[0]):
        settings.resolve(make_home(tmp_path, "a"), claims=registry, **{option: value})
