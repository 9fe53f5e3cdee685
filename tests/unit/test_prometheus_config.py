"""`minik prometheus-config`: a configuration promtool accepts, reading minik's discovery."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from minik.cli.main import cli
from minik.home import Home
from minik.kubeconfig import write_kubeconfig

SERVER = "https://127.0.0.1:16443"


@pytest.fixture
def home(tmp_path: Path) -> Home:
    home = Home.at(tmp_path / "home").ensure()
    home.ca_cert.write_text("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")
    home.token.write_text("secret-token-value\n")
    write_kubeconfig(home, server=SERVER, token="secret-token-value")
    return home


def _run(home: Home, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home.root), "prometheus-config", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_configuration_passes_promtool_and_keeps_the_token_in_its_file(
        home: Home, tmp_path: Path) -> None:
    text = _run(home)
    assert "secret-token-value" not in text
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(text)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make tools`"
    check = subprocess.run([promtool, "check", "config", str(config_file)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_every_job_discovers_through_minik_with_the_instance_ca_and_token_file(
        home: Home) -> None:
    config = yaml.safe_load(_run(home, "--scrape-interval", "5s"))
    assert config["global"]["scrape_interval"] == "5s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"minik-apiserver", "kube-state-metrics", "kubelet", "cadvisor",
                         "kubernetes-pods"}
    for name, role in (("minik-apiserver", "apiserver"), ("kube-state-metrics",
                                                          "kube-state-metrics"),
                       ("kubelet", "nodes"), ("cadvisor", "cadvisor"),
                       ("kubernetes-pods", "pods")):
        [sd] = jobs[name]["http_sd_configs"]
        assert sd["url"] == f"{SERVER}/prometheus/targets/{role}"
        assert sd["refresh_interval"] == "5s"
        assert sd["authorization"]["credentials_file"] == str(home.token)
        assert sd["tls_config"]["ca_file"] == str(home.ca_cert)
    assert jobs["cadvisor"]["authorization"]["credentials_file"] == str(home.token)
    assert "authorization" not in jobs["kubernetes-pods"], "pods never get minik's token"
    targets = {r.get("target_label"): r.get("source_labels")
               for r in jobs["kubernetes-pods"]["relabel_configs"]}
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
    assert targets["pod"] == ["__meta_kubernetes_pod_name"]
    assert targets["container"] == ["__meta_kubernetes_pod_container_name"]


def test_a_scrape_interval_that_is_no_duration_is_refused(home: Home) -> None:
    result = CliRunner().invoke(cli, ["--home", str(home.root), "prometheus-config",
                                      "--scrape-interval", "fast"])
    assert result.exit_code == 2
    assert "'fast' is not a duration" in result.output


def test_an_instance_never_started_is_told_to_start(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "none"), "prometheus-config"])
    assert result.exit_code == 1
    assert "is minik up?" in result.output
