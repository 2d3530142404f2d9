// The Sessions tab: the table of the daemon's sessions with per-row actions, a CPU sparkline per VM, and
// for the selected session a bigger live chart and the idle-policy override editor. Rows are updated in
// place on every poll so keyboard focus stays where it was.

import { call } from "./ipc.js";
import { drawChart } from "./chart.js";
import { el, stateName, stateWords, megabytes, policyText, DF_SUSPEND, DF_AUTOSTART } from "./format.js";

const POLL_MS = 2000;
const ACTIONS = {
  running: ["pause", "hibernate", "stop", "reset"],
  paused: ["resume", "stop"],
  saved: ["resume", "stop"],
  poweroff: ["start"],
  available: ["start"],
  missing: ["start"],
};
const ACTION_LABELS = {
  start: "Start", pause: "Pause", resume: "Resume", stop: "Stop", hibernate: "Hibernate",
  reset: "Reset", close: "Close",
};

const $ = (id) => document.getElementById(id);
let sessions = [];
let samples = {};
let selected = null;
const rows = new Map();
let onError = () => {};

/** Starts polling; `reportError(text)` shows a problem in the page's status line. */
export function initSessions(reportError) {
  onError = reportError;
  $("policy-form").addEventListener("submit", (e) => { e.preventDefault(); savePolicy(); });
  $("policy-website").addEventListener("change", syncPolicyFields);
  $("policy-own").addEventListener("change", syncPolicyFields);
  $("policy-controlled").addEventListener("change", syncPolicyFields);
  window.addEventListener("resize", drawCharts);
  refresh();
  setInterval(refresh, POLL_MS);
}

/** Selects the session `name`, scrolls to its row and highlights it (the tray's "Show in panel"). */
export function showSession(name) {
  const row = rows.get(name);
  if (!row) { pendingShow = name; return; }
  pendingShow = null;
  select(name);
  row.scrollIntoView({ block: "center" });
  row.classList.remove("flash");
  void row.offsetWidth; // restart the animation
  row.classList.add("flash");
  row.querySelector(".vm-button").focus();
}
let pendingShow = null;

/** The names of the sessions the table shows (for the activity filter). */
export function sessionNames() {
  return sessions.map((s) => s.name);
}

async function refresh() {
  try {
    const [list, s] = await Promise.all([call("list_sessions"), call("session_samples")]);
    sessions = list;
    samples = s || {};
    render();
  } catch (e) {
    onError("Cannot list the sessions: " + e.message);
  }
}

function render() {
  const body = $("sessions-body");
  $("sessions-empty").hidden = sessions.length > 0;
  $("sessions-table").hidden = sessions.length === 0;
  $("sessions-count").textContent = sessions.length ? `(${sessions.length})` : "";
  const names = new Set(sessions.map((s) => s.name));
  for (const [name, row] of rows) if (!names.has(name)) { row.remove(); rows.delete(name); }
  for (const s of sessions) {
    let row = rows.get(s.name);
    if (!row) { row = newRow(s); rows.set(s.name, row); }
    body.append(row); // keeps the daemon's order
    updateRow(row, s);
  }
  if (selected && !names.has(selected)) selected = null;
  if (!selected && sessions.length) select(sessions[0].name);
  else renderDetails(false);
  if (pendingShow && names.has(pendingShow)) showSession(pendingShow);
  drawCharts();
}

function newRow(s) {
  const cell = (cls) => el("td", { class: cls });
  const row = el("tr", { dataset: { session: s.name } },
    el("td", { class: "c-vm" },
      el("button", { type: "button", class: "vm-button link", onclick: () => select(s.name) }),
      el("div", { class: "origin" })),
    cell("c-state"), cell("c-res"),
    el("td", { class: "c-cap" }, el("span", { class: "cap-text" }),
      el("canvas", { class: "spark", width: "110", height: "28", role: "img" })),
    cell("c-policy"),
    el("td", { class: "c-image" }, el("div", { class: "image" }), el("div", { class: "api" })),
    el("td", { class: "c-actions" }, el("div", { class: "actions" })));
  row.addEventListener("click", (e) => { if (!e.target.closest("button")) select(s.name); });
  return row;
}

function updateRow(row, s) {
  const state = stateName(s.state);
  const set = (sel, text) => { const n = row.querySelector(sel); if (n.textContent !== text) n.textContent = text; };
  const vmButton = row.querySelector(".vm-button");
  set(".vm-button", s.vm || s.name);
  vmButton.setAttribute("aria-label", `${s.vm || s.name} from ${s.origin}: show details`);
  set(".origin", s.origin);
  set(".c-state", stateWords(state) + (s.busy ? " (working…)" : "") + (s.heldByHand ? " · held by you" : ""));
  row.querySelector(".c-state").dataset.state = state;
  set(".c-res", `${s.cpus} CPU${s.cpus === 1 ? "" : "s"} · ${megabytes(s.memoryMb)} RAM · ${megabytes(s.diskMb)} disk`);
  const applied = s.appliedCap != null && s.appliedCap !== s.cap ? ` (now ${s.appliedCap}%)` : "";
  set(".cap-text", `${s.cap}%${applied}`);
  const policy = s.userPolicy ? "Yours: " + policyText(s.userPolicy) : policyText(s.idlePolicy);
  set(".c-policy", policy);
  set(".image", s.image || "–");
  set(".api", s.apiUrl ? "API: " + s.apiUrl : "API: not up");
  row.classList.toggle("selected", s.name === selected);
  row.setAttribute("aria-selected", s.name === selected ? "true" : "false");

  const wanted = (ACTIONS[state] || []).concat("close");
  const box = row.querySelector(".actions");
  const signature = wanted.join(",") + (s.busy ? "/busy" : "");
  if (box.dataset.signature === signature) return;
  const hadFocus = box.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  box.dataset.signature = signature;
  box.replaceChildren(...wanted.map((a) => el("button", {
    type: "button", class: a === "close" ? "danger" : "", disabled: s.busy, dataset: { action: a },
    "aria-label": `${ACTION_LABELS[a]} ${s.vm || s.name}`, text: ACTION_LABELS[a],
    onclick: (e) => act(s.name, a, e.currentTarget),
  })));
  if (hadFocus) (box.querySelector(`[data-action="${hadFocus}"]`) || box.querySelector("button") || row.querySelector(".vm-button")).focus();
}

async function act(name, action, button) {
  if (action === "close" && button.dataset.confirm !== "yes") {
    // Closing destroys the VM and its files: ask once more, in place.
    button.dataset.confirm = "yes";
    button.textContent = "Really close?";
    setTimeout(() => { if (button.isConnected) { button.dataset.confirm = ""; button.textContent = "Close"; } }, 5000);
    return;
  }
  button.disabled = true;
  try {
    await call("session_action", { name, action });
  } catch (e) {
    onError(`${ACTION_LABELS[action]} failed: ${e.message}`);
  } finally {
    if (button.isConnected) button.disabled = false;
    refresh();
  }
}

function select(name) {
  const changed = selected !== name;
  selected = name;
  for (const [n, row] of rows) {
    row.classList.toggle("selected", n === name);
    row.setAttribute("aria-selected", n === name ? "true" : "false");
  }
  renderDetails(changed);
  drawCharts();
}

function current() {
  return sessions.find((s) => s.name === selected) || null;
}

function renderDetails(fillEditor) {
  const s = current();
  $("details").hidden = !s;
  if (!s) return;
  $("details-title").textContent = `${s.vm || s.name} from ${s.origin}`;
  $("details-website-policy").textContent = policyText(s.idlePolicy);
  if (fillEditor) fillPolicyEditor(s);
}

function fillPolicyEditor(s) {
  const p = s.userPolicy || s.idlePolicy || { controlled: false, minCap: 0, maxCap: 100, flags: 0 };
  $("policy-website").checked = !s.userPolicy;
  $("policy-own").checked = Boolean(s.userPolicy);
  $("policy-controlled").checked = Boolean(p.controlled);
  $("policy-min").value = p.minCap;
  $("policy-max").value = p.maxCap;
  $("policy-suspend").checked = Boolean(p.flags & DF_SUSPEND);
  $("policy-autostart").checked = Boolean(p.flags & DF_AUTOSTART);
  $("policy-message").textContent = "";
  syncPolicyFields();
}

function syncPolicyFields() {
  const own = $("policy-own").checked;
  $("policy-controlled").disabled = !own;
  const on = own && $("policy-controlled").checked;
  for (const id of ["policy-min", "policy-max", "policy-suspend", "policy-autostart"]) $(id).disabled = !on;
}

/** Reads and checks the editor; returns the policy or throws a message for the user. */
export function readPolicy(prefix) {
  const controlled = $(prefix + "-controlled").checked;
  const minCap = Number($(prefix + "-min").value), maxCap = Number($(prefix + "-max").value);
  const flags = ($(prefix + "-suspend").checked ? DF_SUSPEND : 0) | ($(prefix + "-autostart").checked ? DF_AUTOSTART : 0);
  if (controlled) {
    if (!Number.isInteger(minCap) || minCap < 0 || minCap > 100) throw new Error("The cap while you work must be a whole number from 0 to 100.");
    if (!Number.isInteger(maxCap) || maxCap < 1 || maxCap > 100) throw new Error("The cap when idle must be a whole number from 1 to 100.");
    if (minCap > 0 && maxCap < minCap) throw new Error("The cap when idle must not be below the cap while you work.");
  }
  return { controlled, minCap: controlled ? minCap : 0, maxCap: controlled ? maxCap : 100, flags: controlled ? flags : 0 };
}

async function savePolicy() {
  const s = current();
  if (!s) return;
  const msg = $("policy-message");
  let policy = null;
  try {
    if ($("policy-own").checked) policy = readPolicy("policy");
  } catch (e) {
    msg.textContent = e.message; msg.className = "message error"; return;
  }
  try {
    await call("set_session_policy", { name: s.name, policy });
    msg.textContent = policy ? "Saved: your policy applies to this session." : "Saved: the website's policy applies.";
    msg.className = "message ok";
    await refresh();
  } catch (e) {
    msg.textContent = "Not saved: " + e.message; msg.className = "message error";
  }
}

function drawCharts() {
  const now = Date.now();
  for (const [name, row] of rows) {
    const s = sessions.find((x) => x.name === name);
    drawChart(row.querySelector(".spark"), samples[name], now, { label: `${s ? s.vm || name : name}` });
  }
  const s = current();
  if (s && !$("sessions-panel").hidden) {
    $("chart-summary").textContent = drawChart($("chart"), samples[s.name], now, { axes: true, label: s.vm || s.name });
  }
}

/** Redraws after the tab becomes visible (a hidden canvas has no size). */
export function onShown() { drawCharts(); }
