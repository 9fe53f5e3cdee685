"""A pod's resolv.conf as the kubelet forms it, per dnsPolicy, and how it reaches containers."""

from __future__ import annotations

import stat
from typing import Any

import pytest

from agent.containers import PodContext, container_spec, sandbox_spec
from agent.pod_dns import PodResolvConfs, ResolvConf, parse_resolv_conf, pod_resolv_conf
from agent.runtime import BindMount

HOST = parse_resolv_conf(
    "# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
    "search corp.example. lab.example\noptions edns0 timeout:2\n")


def pod(namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace, "uid": "u-1"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def form(p: dict[str, Any], cluster_dns: str | None = "10.244.0.1") -> ResolvConf:
    return pod_resolv_conf(p, cluster_dns=cluster_dns, cluster_domain="cluster.local", host=HOST)


def test_the_hosts_resolv_conf_is_read_as_the_kubelet_reads_it():
    assert ResolvConf(["192.0.2.53", "192.0.2.54"], ["corp.example", "lab.example"],
                              ["edns0", "timeout:2"]) == HOST


def test_cluster_first_uses_only_the_cluster_dns_with_the_cluster_search_list():
    conf = form(pod())
    assert conf.render() == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 10.244.0.1\n"
        "options ndots:5\n")


def test_an_unset_policy_is_cluster_first():
    assert form(pod()) == form(pod(dnsPolicy="ClusterFirst"))


def test_default_is_the_hosts_resolv_conf():
    assert form(pod(dnsPolicy="Default")) == HOST


def test_cluster_first_on_the_host_network_falls_back_to_default():
    assert form(pod(dnsPolicy="ClusterFirst", hostNetwork=True)) == HOST


def test_cluster_first_with_host_net_keeps_the_cluster_dns_on_the_host_network():
    conf = form(pod(dnsPolicy="ClusterFirstWithHostNet", hostNetwork=True))
    assert conf.nameservers == ["10.244.0.1"]
    assert conf.options == ["ndots:5"]


def test_none_is_only_the_pods_dns_config():
    conf = form(pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["192.0.2.99"], "searches": ["a.example"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    assert conf.render() == "search a.example\nnameserver 192.0.2.99\noptions ndots:2 edns0\n"


def test_dns_config_is_merged_into_cluster_first_without_repeats():
    conf = form(pod(dnsConfig={
        "nameservers": ["192.0.2.99", "10.244.0.1"], "searches": ["svc.cluster.local", "x.example"],
        "options": [{"name": "ndots", "value": "1"}, {"name": "single-request"}]}))
    assert conf.nameservers == ["10.244.0.1", "192.0.2.99"]
    assert conf.searches[-1] == "x.example"
    assert conf.searches.count("svc.cluster.local") == 1
    assert conf.options == ["ndots:1", "single-request"]


def test_without_a_cluster_dns_cluster_first_falls_back_to_default():
    assert form(pod(), cluster_dns=None) == HOST


def test_the_kubelets_limits_cut_nameservers_and_search_domains():
    conf = form(pod(dnsPolicy="None", dnsConfig={
        "nameservers": [f"192.0.2.{n}" for n in range(1, 6)],
        "searches": [f"d{n}.example" for n in range(40)] + ["x" * 254]}))
    assert len(conf.nameservers) == 3
    assert len(conf.searches) == 32
    assert "x" * 254 not in conf.searches


async def test_the_agent_writes_each_pods_file_world_readable_and_removes_it(tmp_path):
    host = tmp_path / "host-resolv.conf"
    host.write_text("nameserver 192.0.2.53\n")
    confs = PodResolvConfs(tmp_path / "pods", cluster_domain="cluster.local",
                           host_resolv_conf=host)
    confs.cluster_dns = "10.244.0.1"
    path = await confs.write(pod())
    assert path == tmp_path / "pods" / "u-1" / "resolv.conf"
    assert "nameserver 10.244.0.1\n" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert confs.known_pods() == {"u-1"}
    await confs.remove("u-1")
    assert not (tmp_path / "pods" / "u-1").exists()
    with pytest.raises(ValueError, match="pod uid"):
        confs.path("../x")


def test_the_sandbox_and_every_container_get_the_pods_resolv_conf():
    p = pod(containers=[
        {"name": "c", "image": "busybox"},
        {"name": "ro", "image": "busybox", "securityContext": {"readOnlyRootFilesystem": True}},
        {"name": "own", "image": "busybox"}])
    ctx = PodContext("unit", p, "net", "pause", "/pods/u-1/resolv.conf")
    mount = BindMount("/pods/u-1/resolv.conf", "/etc/resolv.conf", True)
    assert sandbox_spec(ctx, 0).mounts == [mount]
    specs = {c["name"]: container_spec(ctx, c, sandbox_id="s", restart_count=0, env={},
                                       mounts=[]) for c in p["spec"]["containers"]}
    assert specs["c"].mounts == [BindMount("/pods/u-1/resolv.conf", "/etc/resolv.conf", False)]
    assert specs["ro"].mounts == [mount]
    users = BindMount("/vol", "/etc/resolv.conf", True)
    own = container_spec(ctx, p["spec"]["containers"][2], sandbox_id="s", restart_count=0,
                         env={}, mounts=[users])
    assert own.mounts == [users]
