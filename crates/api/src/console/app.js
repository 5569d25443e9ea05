// The exo-writeback console: plain JavaScript, no build step, nothing from elsewhere. It holds
// a token in this tab's sessionStorage and reads and writes through the agent's API, with the
// token's role; every value is put into the page as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("exo-writeback-token") || "";
let logCursor = null;

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

function say(text) { $("message").textContent = text || ""; }

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + token };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!r.ok) {
    const message = body && body.error ? body.error.message : "HTTP " + r.status;
    const e = new Error(message);
    e.status = r.status;
    throw e;
  }
  return body;
}

// Signing in: the token is checked against /api/v1/status before it is kept.
async function signIn(candidate) {
  token = candidate;
  try {
    await api("/api/v1/status");
  } catch (e) {
    token = "";
    $("login-error").textContent = e.status === 401 ? "That token is not known to this agent." : e.message;
    return;
  }
  sessionStorage.setItem("exo-writeback-token", token);
  $("login-error").textContent = "";
  route();
}

function signOut() {
  token = "";
  sessionStorage.removeItem("exo-writeback-token");
  route();
}

const views = ["overview", "logs", "provision", "held", "undo", "escrow"];

function route() {
  const signedIn = token !== "";
  $("login-view").hidden = signedIn;
  $("nav").hidden = !signedIn;
  const name = (location.hash || "#overview").slice(1);
  for (const v of views) $(v + "-view").hidden = !signedIn || v !== name;
  say("");
  if (!signedIn) return;
  const load = { overview, logs: () => loadLogs(false), held, escrow }[name];
  if (load) load().catch((e) => say(e.message));
}

// Overview: the job, the last cycles and a chart of writes and failures.
async function overview() {
  const [status, cycles] = await Promise.all([api("/api/v1/status"), api("/api/v1/cycles?limit=30")]);
  const job = $("job");
  job.replaceChildren();
  const row = (k, v) => job.append(el("dt", {}, k), el("dd", {}, v));
  row("Job", status.job.state + (status.job.paused ? " (paused by " + status.job.paused.by + ")" : ""));
  row("Last successful cycle", status.lastSuccessfulCycle ? status.lastSuccessfulCycle.id + " at " + status.lastSuccessfulCycle.finishedAt : "none");
  row("Held cycles", status.pendingApproval.length ? status.pendingApproval.join(", ") : "none");
  row("Escrow", status.escrow);
  row("Next run", status.nextRun);
  const body = $("cycles").tBodies[0];
  body.replaceChildren(...cycles.value.map((c) => el("tr", {},
    el("td", {}, c.id), el("td", {}, c.kind), el("td", {}, c.status), el("td", {}, c.startedAt),
    el("td", {}, c.counts.written), el("td", {}, c.counts.failed), el("td", {}, c.counts.skipped))));
  chart(cycles.value.slice().reverse());
}

function chart(cycles) {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const max = Math.max(1, ...cycles.map((c) => c.counts.written + c.counts.failed));
  const w = 640 / Math.max(cycles.length, 1);
  cycles.forEach((c, i) => {
    let y = 160;
    for (const [kind, n] of [["written", c.counts.written], ["failed", c.counts.failed]]) {
      const h = (n / max) * 150;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", kind);
      r.setAttribute("x", i * w + 1);
      r.setAttribute("width", Math.max(w - 2, 1));
      r.setAttribute("y", y - h);
      r.setAttribute("height", h);
      const t = document.createElementNS(ns, "title");
      t.textContent = "cycle " + c.id + ": " + n + " " + kind;
      r.append(t);
      svg.append(r);
      y -= h;
    }
  });
}

// Provisioning logs: filters, cursor paging, and an entry's detail.
async function loadLogs(more) {
  const q = new URLSearchParams({ limit: "50" });
  if ($("log-status").value) q.set("status", $("log-status").value);
  if ($("log-identity").value.trim()) q.set("identity", $("log-identity").value.trim());
  if ($("log-cycle").value.trim()) q.set("cycle", $("log-cycle").value.trim());
  if (more && logCursor) q.set("cursor", logCursor);
  const page = await api("/api/v1/logs?" + q);
  const body = $("logs").tBodies[0];
  const rows = page.value.map((e) => {
    const tr = el("tr", { className: "entry" },
      el("td", {}, e.activityDateTime), el("td", {}, e.cycleId),
      el("td", {}, e.sourceIdentity.displayName || e.sourceIdentity.id || ""),
      el("td", {}, e.action), el("td", {}, e.provisioningStatusInfo.status));
    tr.dataset.id = e.id;
    tr.addEventListener("click", () => detail(e.id).catch((x) => say(x.message)));
    return tr;
  });
  if (more) body.append(...rows); else body.replaceChildren(...rows);
  logCursor = page.nextCursor || null;
  $("log-more").hidden = !logCursor;
  if (!more) $("log-detail").replaceChildren();
}

function stepsList(steps) {
  return steps.map((s) => el("li", { className: "step step-" + s.status },
    el("strong", {}, s.name), " — " + s.status + ": " + s.description));
}

function changesTable(props) {
  return el("table", { className: "changes" },
    el("thead", {}, el("tr", {}, el("th", {}, "Attribute"), el("th", {}, "Old"), el("th", {}, "New"))),
    el("tbody", {}, ...props.map((p) => el("tr", {},
      el("td", {}, p.displayName), el("td", {}, p.oldValue), el("td", {}, p.newValue)))));
}

async function detail(id) {
  const e = await api("/api/v1/logs/" + encodeURIComponent(id));
  const info = e.provisioningStatusInfo;
  $("log-detail").replaceChildren(
    el("h3", {}, "Entry " + e.id),
    el("p", {}, (e.sourceIdentity.displayName || "") + " → " + (e.targetIdentity.id || "") + ": " + e.action + ", " + info.status),
    info.errorInformation ? el("p", { className: "error" }, info.errorInformation.errorCode + ": " + info.errorInformation.reason + " " + info.errorInformation.recommendedResolution) : "",
    el("ol", { id: "detail-steps" }, ...stepsList(e.provisioningSteps)),
    changesTable(e.modifiedProperties));
}

// Provision on demand, its steps shown as they are decided (one JSON object per line from
// /api/v1/provision/stream), then the result.
async function provision() {
  const steps = $("provision-steps");
  steps.replaceChildren();
  $("provision-result").textContent = "provisioning…";
  const r = await fetch("/api/v1/provision/stream", {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ identity: $("provision-identity").value.trim(), dryRun: $("provision-dry").checked }),
  });
  if (!r.ok) {
    let message = "HTTP " + r.status;
    try { message = (await r.json()).error.message; } catch (_) { /* not JSON */ }
    const e = new Error(message);
    e.status = r.status;
    throw e;
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    pending += decoder.decode(value || new Uint8Array(), { stream: !done });
    let newline;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) showProvisionEvent(JSON.parse(line));
    }
    if (done) break;
  }
}

function showProvisionEvent(event) {
  if (event.step) {
    $("provision-steps").append(...stepsList([event.step]));
  } else if (event.result) {
    const r = event.result;
    $("provision-steps").replaceChildren(...stepsList(r.entry.provisioningSteps));
    $("provision-result").replaceChildren(
      el("span", {}, r.entry.action + ": " + r.entry.provisioningStatusInfo.status + (r.dryRun ? " (dry run: nothing written)" : "")),
      changesTable(r.entry.modifiedProperties));
  } else if (event.error) {
    const e = new Error(event.error.message);
    throw e;
  }
}

// Held cycles: the list, every staged change of one, approve or reject.
async function held() {
  const list = await api("/api/v1/held");
  $("held-changes").replaceChildren();
  $("held-list").replaceChildren(...list.value.map((h) => {
    const b = el("button", { type: "button", className: "review" }, "Review cycle " + h.cycle);
    b.dataset.cycle = h.cycle;
    b.addEventListener("click", () => review(h.cycle).catch((e) => say(e.message)));
    return el("li", {}, b, " " + h.objects + " objects");
  }));
  if (!list.value.length) $("held-list").append(el("li", {}, "No cycle is held."));
}

async function review(cycle) {
  const changes = await api("/api/v1/held/" + cycle + "?limit=500");
  const approve = el("button", { type: "button", id: "approve" }, "Approve cycle " + cycle);
  const reject = el("button", { type: "button", id: "reject" }, "Reject");
  approve.addEventListener("click", () => decide(cycle, "approve").catch((e) => say(e.message)));
  reject.addEventListener("click", () => decide(cycle, "reject").catch((e) => say(e.message)));
  $("held-changes").replaceChildren(
    el("h3", {}, "Cycle " + cycle + ": " + changes.total + " staged changes"),
    ...changes.value.map((c) => el("div", { className: "staged" },
      el("h4", {}, c.dn + (c.removesValues ? " (removes values)" : "")),
      changesTable(c.modifiedProperties))),
    approve, " ", reject);
}

async function decide(cycle, what) {
  const r = await api("/api/v1/held/" + cycle + "/" + what, { method: "POST", body: {} });
  await held();
  $("held-changes").replaceChildren(el("p", { id: "decided", className: "ok" },
    (what === "approve" ? "Approved" : "Rejected") + " cycle " + cycle + ": " + r.counts.written + " written, " + r.counts.failed + " failed (cycle " + r.cycle + ")."));
}

async function undo() {
  const cycle = $("undo-cycle").value.trim();
  const object = $("undo-object").value.trim();
  const body = cycle ? { cycle: Number(cycle) } : { object };
  const r = await api("/api/v1/undo", { method: "POST", body });
  $("undo-result").textContent = "Undone in cycle " + r.cycle + ": " + r.counts.written + " written, " + r.counts.failed + " failed.";
}

async function escrow() {
  const list = await api("/api/v1/escrow");
  $("escrow").tBodies[0].replaceChildren(...list.value.map((e) => {
    const b = el("button", { type: "button" }, "Retry");
    b.addEventListener("click", () => api("/api/v1/escrow/" + encodeURIComponent(e.cloudId) + "/retry", { method: "POST", body: {} })
      .then(() => say("retried at the next cycle")).catch((x) => say(x.message)));
    return el("tr", {}, el("td", {}, e.primarySmtpAddress || e.cloudId), el("td", {}, e.errorCode + ": " + e.reason),
      el("td", {}, e.attempts), el("td", {}, e.nextRetry), el("td", {}, b));
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
  $("signout").addEventListener("click", signOut);
  $("log-filter").addEventListener("submit", (e) => { e.preventDefault(); loadLogs(false).catch((x) => say(x.message)); });
  $("log-more").addEventListener("click", () => loadLogs(true).catch((x) => say(x.message)));
  $("provision").addEventListener("submit", (e) => { e.preventDefault(); provision().catch((x) => { $("provision-result").textContent = ""; say(x.message); }); });
  $("undo").addEventListener("submit", (e) => { e.preventDefault(); undo().catch((x) => say(x.message)); });
  window.addEventListener("hashchange", route);
  route();
});
