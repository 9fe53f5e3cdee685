"""`minik prometheus-config`: a prometheus.yml that finds and scrapes this instance by itself.

Debian's Prometheus is built without `kubernetes_sd_configs`, so every job
discovers its targets through minik's HTTP service discovery
(`/prometheus/targets/<role>`, see `minik.monitoring.targets`), refreshed
every scrape interval, so a new pod is scraped within two intervals:

- `minik-apiserver`, `kube-state-metrics`, `kubelet`, `cadvisor`: the API
  server itself and, through its node proxy, each node's kubelet endpoints;
  HTTPS verified against the instance's CA, with the instance's token;
- `kubernetes-pods`: pods annotated `prometheus.io/scrape: "true"`, at their
  IP from the host, without minik's token (it is not theirs to see).

The token and the CA are referenced as files of the instance home
(`credentials_file`, `ca_file`), never written into the configuration.
Relabelling turns the discovery's `__meta_kubernetes_*` labels into the
`namespace`, `pod`, `container` and `node` labels Kubernetes dashboards expect.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import yaml

from minik.cli.context import CliContext, fail, pass_context
from minik.home import Home
from minik.kubeconfig import KubeconfigError, load_kubeconfig

DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")
"""Prometheus' duration syntax (`15s`, `1m30s`)."""
META = "__meta_kubernetes_"


class _Dumper(yaml.SafeDumper):
    """Writes a mapping used twice in full each time, not as a YAML anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _copy(source: str, target: str) -> dict[str, Any]:
    return {"source_labels": [source], "target_label": target}


POD_RELABELING = [
    _copy(f"{META}namespace", "namespace"),
    _copy(f"{META}pod_name", "pod"),
    _copy(f"{META}pod_container_name", "container"),
    _copy(f"{META}pod_node_name", "node"),
    {"action": "labelmap", "regex": f"{META}pod_label_(.+)"},
]
NODE_RELABELING = [
    _copy(f"{META}node_name", "instance"),
    _copy(f"{META}node_name", "node"),
]


def prometheus_config(*, server: str, ca_file: Path, token_file: Path,
                      scrape_interval: str) -> dict[str, Any]:
    """The configuration, as a mapping for `yaml.safe_dump`."""
    client = {"tls_config": {"ca_file": str(ca_file)},
              "authorization": {"type": "Bearer", "credentials_file": str(token_file)}}

    def discovery(role: str) -> list[dict[str, Any]]:
        return [{"url": f"{server.rstrip('/')}/prometheus/targets/{role}",
                 "refresh_interval": scrape_interval, **client}]

    def minik_job(name: str, role: str, **extra: Any) -> dict[str, Any]:
        return {"job_name": name, "scheme": "https", **client,
                "http_sd_configs": discovery(role), **extra}

    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            minik_job("minik-apiserver", "apiserver"),
            minik_job("kube-state-metrics", "kube-state-metrics", honor_labels=True),
            minik_job("kubelet", "nodes", relabel_configs=NODE_RELABELING),
            minik_job("cadvisor", "cadvisor", honor_labels=True,
                      relabel_configs=NODE_RELABELING),
            {"job_name": "kubernetes-pods", "http_sd_configs": discovery("pods"),
             "relabel_configs": POD_RELABELING},
        ],
    }


@click.command("prometheus-config")
@click.option("--scrape-interval", default="15s", show_default=True,
              help="How often Prometheus scrapes, and refreshes its targets (a Prometheus "
                   "duration: 5s, 1m).")
@pass_context
def prometheus_config_command(ctx: CliContext, scrape_interval: str) -> None:
    """Print a prometheus.yml that discovers and scrapes this minik instance."""
    if not DURATION.fullmatch(scrape_interval):
        raise click.BadParameter(f"{scrape_interval!r} is not a duration such as 15s or 1m",
                                 param_hint="--scrape-interval")
    home: Home = ctx.home
    try:
        access = load_kubeconfig(home.kubeconfig)
    except KubeconfigError as e:
        fail(str(e))
    for path in (home.ca_cert, home.token):
        if not path.exists():
            fail(f"{path}: no such file (start this instance once with `minik up`)")
    config = prometheus_config(server=access.server, ca_file=home.ca_cert,
                               token_file=home.token, scrape_interval=scrape_interval)
    click.echo(f"# Prometheus configuration for the minik instance at {access.server}\n"
               f"# (written by `minik prometheus-config`; the token stays in {home.token}).")
    click.echo(yaml.dump(config, Dumper=_Dumper, sort_keys=False), nl=False)
