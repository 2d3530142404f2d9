// Control panel entry point: the header (daemon status, idle source and state), the tabs (Sessions,
// Activity, Settings) with keyboard navigation, and the tray's "Show in panel" (event `show-session`,
// or `#session=NAME` when the tray had to create this window first).

import { call, on, inApp } from "./ipc.js";
import { initSessions, showSession, onShown } from "./sessions.js";
import { initActivity } from "./activity.js";
import { initSettings, reload as reloadSettings } from "./settings.js";

const $ = (id) => document.getElementById(id);
const IDLE_POLL_MS = 2000;

function reportError(text) {
  const n = $("problem");
  n.textContent = text;
  n.hidden = !text;
  clearTimeout(reportError.timer);
  reportError.timer = setTimeout(() => { n.hidden = true; }, 15000);
}

function initTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const choose = (tab, focus) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    if (focus) tab.focus();
    document.body.dataset.tab = tab.id;
    if (tab.id === "tab-sessions") onShown();
    if (tab.id === "tab-settings") reloadSettings();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => choose(tab, false));
    tab.addEventListener("keydown", (e) => {
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      choose(tabs[(next + tabs.length) % tabs.length], true);
    });
  });
  return (id) => choose($(id), false);
}

async function loadStatus() {
  try {
    const s = await call("daemon_status");
    $("status").textContent = `Running · version ${s.version} · listening on ${s.listen}`;
    $("version").textContent = `${s.version} (protocol ${s.protocol})`;
    $("listen").textContent = s.listen;
    $("data-dir").textContent = s.data_dir;
  } catch (e) {
    $("status").textContent = "Cannot reach the daemon: " + e.message;
  }
}

const IDLE_SOURCES = {
  x11: "the X11 screen saver extension", "gnome-mutter": "GNOME (Mutter)",
  "wayland-ext-idle-notify": "Wayland (ext-idle-notify)",
  none: "nothing (idle control is off)", unknown: "an unknown source",
};

async function loadIdle() {
  try {
    const i = await call("idle_info");
    const snoozed = i.snoozedUntilMs && i.snoozedUntilMs > Date.now();
    const idleText = i.idleSeconds != null ? `Idle for ${i.idleSeconds} s` : "Idle";
    $("idle-state").textContent = i.source === "none" ? "–" : snoozed ? "Snoozed" : i.idle ? idleText : "Active";
    $("idle-state").dataset.idle = i.idle ? "yes" : "no";
    $("idle-source").textContent = IDLE_SOURCES[i.source] || i.source;
    $("idle-summary").textContent = i.summary + (snoozed ? ` (snoozed until ${new Date(i.snoozedUntilMs).toLocaleTimeString()})` : "");
  } catch (e) {
    $("idle-state").textContent = "Unknown";
    $("idle-summary").textContent = e.message;
  }
}

function sessionFromHash() {
  const m = /^#session=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1].replace(/\+/g, " ")) : null; // form-urlencoded by the tray
}

async function main() {
  const choose = initTabs();
  if (!inApp) {
    $("status").textContent = "This page must be opened from the CernVM WebAPI tray app.";
    return;
  }
  on("show-session", (name) => { choose("tab-sessions"); showSession(String(name)); });
  const hinted = sessionFromHash();
  if (hinted) showSession(hinted);
  loadStatus();
  loadIdle();
  setInterval(loadIdle, IDLE_POLL_MS);
  initSessions(reportError);
  initActivity(reportError, (e) => { if (e.kind === "idle-changed") loadIdle(); });
  initSettings(reportError);
}

main();
