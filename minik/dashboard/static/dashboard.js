// minik's live dashboard. Each kind shown is listed once, then followed by a watch from
// the list's resourceVersion, asked as a WebSocket (one watch event per message; see
// minik/dashboard/__init__.py for why not fetch); a 410 Gone lists again. Pod metrics
// come from metrics.k8s.io every 15 s, as often as they change. Every string from the
// API reaches the DOM as textContent, never as HTML.
"use strict";

const KINDS = {
  namespaces: { group: "/api/v1", clusterScoped: true },
  pods: { group: "/api/v1" },
  deployments: { group: "/apis/apps/v1" },
  statefulsets: { group: "/apis/apps/v1" },
  daemonsets: { group: "/apis/apps/v1" },
  jobs: { group: "/apis/batch/v1" },
  cronjobs: { group: "/apis/batch/v1" },
  services: { group: "/api/v1" },
  endpoints: { group: "/api/v1" },
  events: { group: "/api/v1" },
};
const ALL = "";
const METRICS_PERIOD = 15000;
const RECENT_EVENTS = 20;
const LOG_LIMIT = 200000;

const stores = {};
const state = { namespace: "default", metrics: null, metricsTimer: 0, metricsRound: 0, logs: null,
  logsPod: null };
let renderTimer = 0;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function keyOf(o) {
  return `${o.metadata.namespace || ""}/${o.metadata.name}`;
}

function collectionPath(resource, namespace) {
  const kind = KINDS[resource];
  if (kind.clusterScoped || namespace === ALL) return `${kind.group}/${resource}`;
  return `${kind.group}/namespaces/${encodeURIComponent(namespace)}/${resource}`;
}

function setConnection(text, className) {
  const node = document.getElementById("connection");
  node.textContent = text;
  node.className = className;
}

// One collection, listed then watched; `items` maps namespace/name to the object.
class Watched {
  constructor(path) {
    this.path = path;
    this.items = new Map();
    this.resourceVersion = "";
    this.closed = false;
    this.socket = null;
    this.failures = 0;
    this.listed = false;
  }

  async list() {
    if (this.closed) return;
    try {
      const response = await fetch(this.path, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`${response.status} listing ${this.path}`);
      const list = await response.json();
      if (this.closed) return;
      this.items = new Map((list.items || []).map((o) => [keyOf(o), o]));
      this.resourceVersion = list.metadata.resourceVersion;
      this.listed = true;
      this.failures = 0;
      changed();
      this.watch();
    } catch (error) {
      this.retry(() => this.list(), error);
    }
  }

  watch() {
    if (this.closed) return;
    const url = new URL(this.path, location.href);
    url.protocol = "ws:";
    url.searchParams.set("watch", "1");
    url.searchParams.set("resourceVersion", this.resourceVersion);
    url.searchParams.set("allowWatchBookmarks", "true");
    const socket = new WebSocket(url);
    this.socket = socket;
    let expired = false;
    socket.onopen = () => setConnection("live", "ok");
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      const o = event.object || {};
      if (event.type === "ERROR") {
        expired = o.code === 410;
        if (!expired) setConnection(`watch of ${this.path}: ${o.message || o.code}`, "bad");
        return;
      }
      this.failures = 0;
      if (o.metadata && o.metadata.resourceVersion) this.resourceVersion = o.metadata.resourceVersion;
      if (event.type === "BOOKMARK") return;
      if (event.type === "DELETED") this.items.delete(keyOf(o));
      else this.items.set(keyOf(o), o);
      changed();
    };
    socket.onclose = () => {
      if (this.closed) return;
      if (expired) this.list();
      else this.retry(() => this.watch());
    };
  }

  retry(again, error) {
    if (error) setConnection(String(error.message || error), "bad");
    const delay = Math.min(30000, 250 * 2 ** this.failures++);
    setTimeout(() => { if (!this.closed) again(); }, delay);
  }

  stop() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}

function changed() {
  if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = 0; render(); }, 30);
}

function follow(namespace) {
  for (const store of Object.values(stores)) store.stop();
  for (const resource of Object.keys(KINDS)) {
    stores[resource] = new Watched(collectionPath(resource, namespace));
    stores[resource].list();
  }
  clearTimeout(state.metricsTimer);
  state.metrics = null;
  loadMetrics(++state.metricsRound);
  changed();
}

// metrics.k8s.io/v1beta1 PodMetrics: summed over containers, null while absent. Each
// follow() starts a new round; a request of an older round still in flight when the
// namespace changed neither shows its answer nor schedules another load, so one loop runs.
async function loadMetrics(round) {
  const namespace = state.namespace;
  const path = namespace === ALL ? "/apis/metrics.k8s.io/v1beta1/pods"
    : `/apis/metrics.k8s.io/v1beta1/namespaces/${encodeURIComponent(namespace)}/pods`;
  try {
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    const metrics = new Map();
    if (response.ok) {
      for (const item of (await response.json()).items || []) {
        let cpu = 0;
        let memory = 0;
        for (const c of item.containers || []) {
          cpu += cpuMillis(c.usage && c.usage.cpu);
          memory += bytes(c.usage && c.usage.memory);
        }
        metrics.set(keyOf(item), { cpu, memory });
      }
    }
    if (round !== state.metricsRound) return;
    state.metrics = response.ok ? metrics : null;
  } catch (error) {
    if (round !== state.metricsRound) return;
    state.metrics = null;
  }
  changed();
  state.metricsTimer = setTimeout(() => loadMetrics(round), METRICS_PERIOD);
}

const SUFFIXES = { n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12,
  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

function quantity(text) {
  const match = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(text || "0"));
  if (!match) return 0;
  return parseFloat(match[1]) * (match[2] ? SUFFIXES[match[2]] || 1 : 1);
}

function cpuMillis(text) { return quantity(text) * 1000; }
function bytes(text) { return quantity(text); }

function shownCpu(pod) {
  const m = state.metrics && state.metrics.get(keyOf(pod));
  return m ? `${Math.round(m.cpu)}m` : "—";
}

function shownMemory(pod) {
  const m = state.metrics && state.metrics.get(keyOf(pod));
  return m ? `${Math.round(m.memory / 1024 ** 2)}Mi` : "—";
}

function podStatus(pod) {
  if (pod.metadata.deletionTimestamp) return ["Terminating", "warn"];
  for (const c of (pod.status && pod.status.containerStatuses) || []) {
    const s = c.state || {};
    if (s.waiting && s.waiting.reason) return [s.waiting.reason, "warn"];
    if (s.terminated && s.terminated.reason && pod.status.phase === "Running") return [s.terminated.reason, "warn"];
  }
  const phase = (pod.status && pod.status.phase) || "Pending";
  return [phase, { Running: "ok", Succeeded: "ok", Failed: "bad" }[phase] || "warn"];
}

function podReady(pod) {
  const statuses = (pod.status && pod.status.containerStatuses) || [];
  return `${statuses.filter((c) => c.ready).length}/${pod.spec.containers.length}`;
}

function podRestarts(pod) {
  return ((pod.status && pod.status.containerStatuses) || []).reduce((n, c) => n + (c.restartCount || 0), 0);
}

// The workload a pod belongs to ("Kind/namespace/name"), through its controller reference;
// a Deployment's pods are owned by its ReplicaSet `<deployment>-<pod-template-hash>`.
function ownerOf(pod) {
  const refs = pod.metadata.ownerReferences || [];
  const ref = refs.find((r) => r.controller) || refs[0];
  if (!ref) return null;
  const namespace = pod.metadata.namespace;
  if (ref.kind === "ReplicaSet") {
    const hash = (pod.metadata.labels || {})["pod-template-hash"];
    if (hash && ref.name.endsWith(`-${hash}`)) {
      const deployment = ref.name.slice(0, -hash.length - 1);
      if (stores.deployments.items.has(`${namespace}/${deployment}`)) return `Deployment/${namespace}/${deployment}`;
    }
    return null;
  }
  return `${ref.kind}/${namespace}/${ref.name}`;
}

function images(template) {
  return ((template && template.spec && template.spec.containers) || []).map((c) => c.image).join(", ");
}

// A Deployment's rollout, as `kubectl rollout status` judges it.
function deploymentSummary(d) {
  const desired = d.spec.replicas ?? 1;
  const s = d.status || {};
  const updated = s.updatedReplicas || 0;
  const ready = s.readyReplicas || 0;
  const available = s.availableReplicas || 0;
  const total = s.replicas || 0;
  const observed = (s.observedGeneration || 0) >= (d.metadata.generation || 0);
  const stuck = (s.conditions || []).some((c) => c.type === "Progressing" && c.reason === "ProgressDeadlineExceeded");
  let status = ["Available", "ok"];
  if (stuck) status = ["Rollout stuck", "bad"];
  else if (!observed || updated < desired || total > updated) status = ["Rolling out", "warn"];
  else if (available < desired) status = ["Scaling", "warn"];
  let detail = `updated ${updated}/${desired} · ready ${ready}/${desired} · available ${available}/${desired}`;
  if (total > updated) detail += ` · ${total - updated} old`;
  return { status, detail, progress: desired ? Math.min(1, updated / desired) : 1,
    ready: `${ready}/${desired}`, images: images(d.spec.template) };
}

function workloadSummary(kind, o) {
  const s = o.status || {};
  if (kind === "Deployment") return deploymentSummary(o);
  if (kind === "StatefulSet") {
    const desired = o.spec.replicas ?? 1;
    const done = (s.readyReplicas || 0) === desired && (s.updatedReplicas || 0) === desired;
    return { status: done ? ["Ready", "ok"] : ["Progressing", "warn"], progress: desired ? (s.updatedReplicas || 0) / desired : 1,
      detail: `updated ${s.updatedReplicas || 0}/${desired} · ready ${s.readyReplicas || 0}/${desired}`,
      ready: `${s.readyReplicas || 0}/${desired}`, images: images(o.spec.template) };
  }
  if (kind === "DaemonSet") {
    const desired = s.desiredNumberScheduled || 0;
    const done = (s.numberReady || 0) === desired && (s.updatedNumberScheduled || 0) === desired;
    return { status: done ? ["Ready", "ok"] : ["Progressing", "warn"], progress: desired ? (s.updatedNumberScheduled || 0) / desired : 1,
      detail: `updated ${s.updatedNumberScheduled || 0}/${desired} · ready ${s.numberReady || 0}/${desired}`,
      ready: `${s.numberReady || 0}/${desired}`, images: images(o.spec.template) };
  }
  if (kind === "Job") {
    const conditions = s.conditions || [];
    const done = conditions.find((c) => c.status === "True" && (c.type === "Complete" || c.type === "Failed"));
    const completions = o.spec.completions ?? 1;
    return { status: done ? [done.type, done.type === "Complete" ? "ok" : "bad"] : ["Running", "warn"],
      progress: completions ? (s.succeeded || 0) / completions : 1,
      detail: `succeeded ${s.succeeded || 0}/${completions} · active ${s.active || 0} · failed ${s.failed || 0}`,
      ready: `${s.succeeded || 0}/${completions}`, images: images(o.spec.template) };
  }
  const suspended = o.spec.suspend;
  return { status: suspended ? ["Suspended", "muted"] : ["Scheduled", "ok"], progress: null,
    detail: `schedule ${o.spec.schedule} · active ${(s.active || []).length} · last ${s.lastScheduleTime || "never"}`,
    ready: "", images: images(o.spec.jobTemplate && o.spec.jobTemplate.spec && o.spec.jobTemplate.spec.template) };
}

function cell(row, content, className) {
  const td = el("td", undefined, className);
  if (content instanceof Node) td.append(content);
  else if (content !== undefined && content !== null) td.textContent = String(content);
  row.append(td);
  return td;
}

function shownName(o) {
  return state.namespace === ALL ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}

function workloadRow(kind, o) {
  const summary = workloadSummary(kind, o);
  const row = el("tr", undefined, "workload");
  row.dataset.workload = `${kind}/${keyOf(o)}`;
  cell(row, kind);
  cell(row, shownName(o));
  cell(row, summary.status[0], `status ${summary.status[1]}`);
  const detail = el("div");
  if (summary.progress !== null) {
    const bar = el("span", undefined, "bar");
    const fill = el("span");
    fill.style.width = `${Math.round(summary.progress * 100)}%`;
    bar.append(fill);
    detail.append(bar);
  }
  detail.append(el("span", summary.detail, "detail"));
  const td = cell(row, detail);
  if (summary.images) td.append(el("div", summary.images, "muted images"));
  cell(row, summary.ready, "ready");
  const rest = cell(row, "");
  rest.colSpan = 6;
  return row;
}

function podRow(pod, owner) {
  const row = el("tr", undefined, "pod");
  row.dataset.pod = keyOf(pod);
  row.dataset.owner = owner;
  const [status, className] = podStatus(pod);
  cell(row, "Pod", "muted");
  cell(row, shownName(pod), "name");
  cell(row, status, `status ${className}`);
  cell(row, images(pod), "muted");
  cell(row, podReady(pod), "ready");
  cell(row, podRestarts(pod), "restarts");
  cell(row, pod.spec.nodeName || "", "node");
  cell(row, (pod.status && pod.status.podIP) || "", "ip");
  cell(row, shownCpu(pod), "cpu");
  cell(row, shownMemory(pod), "memory");
  const button = el("button", "logs");
  button.type = "button";
  button.className = "logs";
  button.addEventListener("click", () => showLogs(pod));
  cell(row, button);
  return row;
}

function byName(a, b) {
  return keyOf(a).localeCompare(keyOf(b));
}

function renderWorkloads() {
  const podsByOwner = new Map();
  for (const pod of [...stores.pods.items.values()].sort(byName)) {
    const owner = ownerOf(pod) || "";
    if (!podsByOwner.has(owner)) podsByOwner.set(owner, []);
    podsByOwner.get(owner).push(pod);
  }
  const rows = [];
  const shown = new Set();
  for (const [kind, resource] of [["Deployment", "deployments"], ["StatefulSet", "statefulsets"],
    ["DaemonSet", "daemonsets"], ["CronJob", "cronjobs"], ["Job", "jobs"]]) {
    for (const o of [...stores[resource].items.values()].sort(byName)) {
      const key = `${kind}/${keyOf(o)}`;
      rows.push(workloadRow(kind, o));
      for (const pod of podsByOwner.get(key) || []) rows.push(podRow(pod, key));
      shown.add(key);
    }
  }
  const others = [...podsByOwner].filter(([owner]) => !shown.has(owner)).flatMap(([, pods]) => pods);
  if (others.length) {
    const row = el("tr", undefined, "workload");
    cell(row, "Pods");
    const td = cell(row, "not owned by a workload shown here", "muted");
    td.colSpan = 10;
    rows.push(row, ...others.sort(byName).map((pod) => podRow(pod, "")));
  }
  document.querySelector("#workloads tbody").replaceChildren(...rows);
}

function renderServices() {
  const rows = [...stores.services.items.values()].sort(byName).map((svc) => {
    const row = el("tr");
    row.dataset.service = keyOf(svc);
    const ports = (svc.spec.ports || []).map((p) => `${p.name ? p.name + ":" : ""}${p.port}${p.nodePort ? ":" + p.nodePort : ""}/${p.protocol || "TCP"}`);
    const endpoints = stores.endpoints.items.get(keyOf(svc));
    const addresses = [];
    for (const subset of (endpoints && endpoints.subsets) || []) {
      const ports = (subset.ports || []).map((p) => p.port);
      for (const a of subset.addresses || []) addresses.push(...(ports.length ? ports : [""]).map((p) => `${a.ip}${p ? ":" + p : ""}`));
      for (const a of subset.notReadyAddresses || []) addresses.push(`${a.ip} (not ready)`);
    }
    cell(row, shownName(svc));
    cell(row, svc.spec.type || "ClusterIP");
    cell(row, svc.spec.clusterIP || "");
    cell(row, ports.join(", "));
    cell(row, addresses.length ? addresses.join(", ") : "<none>", addresses.length ? "endpoints" : "endpoints muted");
    return row;
  });
  document.querySelector("#services tbody").replaceChildren(...rows);
}

function eventTime(e) {
  return e.lastTimestamp || e.eventTime || (e.series && e.series.lastObservedTime) || e.metadata.creationTimestamp || "";
}

function age(time) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(time)) / 1000));
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

function renderEvents() {
  const events = [...stores.events.items.values()]
    .sort((a, b) => eventTime(b).localeCompare(eventTime(a))).slice(0, RECENT_EVENTS);
  const rows = events.map((e) => {
    const row = el("tr");
    const object = e.involvedObject || e.regarding || {};
    cell(row, age(eventTime(e)));
    cell(row, e.type || "", e.type === "Warning" ? "warn" : "");
    cell(row, e.reason || "");
    cell(row, `${(object.kind || "").toLowerCase()}/${object.name || ""}`);
    cell(row, e.message || e.note || "");
    return row;
  });
  document.querySelector("#events tbody").replaceChildren(...rows);
}

function renderNamespaces() {
  const select = document.getElementById("namespace");
  const names = [...stores.namespaces.items.values()].map((n) => n.metadata.name).sort();
  if (!names.includes(state.namespace) && state.namespace !== ALL) names.push(state.namespace);
  const wanted = ["", ...names].join("\n");
  if (select.dataset.names === wanted) return;
  select.dataset.names = wanted;
  const options = names.map((name) => { const o = el("option", name); o.value = name; return o; });
  const all = el("option", "All namespaces");
  all.value = ALL;
  select.replaceChildren(all, ...options);
  select.value = state.namespace;
}

function render() {
  renderNamespaces();
  renderWorkloads();
  renderServices();
  renderEvents();
  if (!document.body.dataset.ready && Object.values(stores).every((s) => s.listed)) {
    document.body.dataset.ready = String(Math.round(performance.now()));
  }
}

// A pod's log, followed as it grows (`log?follow=true`) until closed or another is shown.
async function showLogs(pod, container = pod.spec.containers[0].name) {
  closeLogs();
  const controller = new AbortController();
  state.logs = controller;
  state.logsPod = pod;
  const section = document.getElementById("logs");
  const text = document.getElementById("logs-text");
  const select = document.getElementById("logs-container");
  select.replaceChildren(...pod.spec.containers.map((c) => el("option", c.name)));
  select.value = container;
  select.hidden = pod.spec.containers.length < 2;
  section.hidden = false;
  section.dataset.pod = keyOf(pod);
  document.getElementById("logs-title").textContent = keyOf(pod);
  text.textContent = "";
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/` +
    `${encodeURIComponent(pod.metadata.name)}/log?follow=true&tailLines=500&container=${encodeURIComponent(container)}`;
  try {
    const response = await fetch(path, { signal: controller.signal });
    if (!response.ok) {
      const status = await response.json().catch(() => ({}));
      text.textContent = `error: ${status.message || response.status}`;
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const atBottom = text.scrollTop + text.clientHeight >= text.scrollHeight - 4;
      text.append(document.createTextNode(value));
      if (text.textContent.length > LOG_LIMIT) text.textContent = text.textContent.slice(-LOG_LIMIT / 2);
      if (atBottom) text.scrollTop = text.scrollHeight;
    }
    text.append(document.createTextNode("\n(the log ended)\n"));
  } catch (error) {
    if (error.name !== "AbortError") text.append(document.createTextNode(`\nerror: ${error.message}\n`));
  }
}

function closeLogs() {
  if (state.logs) state.logs.abort();
  state.logs = null;
  document.getElementById("logs").hidden = true;
}

function start() {
  const select = document.getElementById("namespace");
  const asked = new URLSearchParams(location.search).get("namespace");
  if (asked !== null) state.namespace = asked;
  select.addEventListener("change", () => {
    state.namespace = select.value;
    const url = new URL(location.href);
    url.searchParams.set("namespace", state.namespace);
    history.replaceState(null, "", url);
    closeLogs();
    follow(state.namespace);
  });
  document.getElementById("logs-close").addEventListener("click", closeLogs);
  const containers = document.getElementById("logs-container");
  containers.addEventListener("change", () => showLogs(state.logsPod, containers.value));
  setInterval(renderEvents, 30000); // the events' ages; the data itself arrives by watch
  follow(state.namespace);
}

start();
