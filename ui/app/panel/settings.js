// The Settings tab: the daemon's settings form (validated here, saved through `save_settings`, with the
// restart-needed notice), the image cache (size, Clear cache), blocked sites (Unblock), remembered consent
// answers (Forget), Start at login, the logs folder and Quit (for desktops without a tray icon).

import { call } from "./ipc.js";
import { el, bytes, dateTime, DF_SUSPEND, DF_AUTOSTART } from "./format.js";
import { readPolicy } from "./sessions.js";

const $ = (id) => document.getElementById(id);
const GB = 1024 * 1024 * 1024;
const FIELD_NAMES = {
  idleThresholdSecs: "idle threshold", defaultIdlePolicy: "default idle policy", hypervisor: "hypervisor",
  imageMirror: "image mirror", cacheLimitBytes: "cache size limit", localKeystores: "trusted local keystores",
};
let loaded = null;
let onError = () => {};

export function initSettings(reportError) {
  onError = reportError;
  $("settings-form").addEventListener("submit", (e) => { e.preventDefault(); save(); });
  $("settings-reset").addEventListener("click", () => loaded && fill(loaded));
  $("default-controlled").addEventListener("change", syncDefaultPolicy);
  $("clear-cache").addEventListener("click", clearCache);
  $("autostart").addEventListener("change", setAutostart);
  $("open-logs").addEventListener("click", () => call("open_logs_folder").catch((e) => onError(e.message)));
  // The same Quit as the tray menu's (it asks first when VMs run): for desktops without a tray icon.
  $("quit-app").addEventListener("click", () => call("quit_app").catch((e) => onError(e.message)));
  return reload();
}

/** Reloads everything the tab shows (called when the tab is opened). */
export async function reload() {
  await Promise.all([
    call("get_settings").then((s) => { loaded = s; fill(s); }).catch((e) => say("settings-message", "Cannot read the settings: " + e.message, "error")),
    loadCache(), loadBlocked(), loadRemembered(),
    call("get_start_at_login").then((on) => { $("autostart").checked = Boolean(on); }).catch((e) => onError(e.message)),
  ]);
}

function say(id, text, kind) {
  const n = $(id);
  n.textContent = text;
  n.className = "message" + (kind ? " " + kind : "");
}

function fill(s) {
  $("idle-threshold").value = s.idleThresholdSecs;
  const p = s.defaultIdlePolicy || { controlled: false, minCap: 0, maxCap: 100, flags: 0 };
  $("default-controlled").checked = Boolean(p.controlled);
  $("default-min").value = p.minCap;
  $("default-max").value = p.maxCap;
  $("default-suspend").checked = Boolean(p.flags & DF_SUSPEND);
  $("default-autostart").checked = Boolean(p.flags & DF_AUTOSTART);
  const hv = $("hypervisor");
  if (![...hv.options].some((o) => o.value === s.hypervisor)) hv.append(el("option", { value: s.hypervisor, text: s.hypervisor }));
  hv.value = s.hypervisor;
  $("image-mirror").value = s.imageMirror || "";
  $("cache-limit").value = s.cacheLimitBytes ? +(s.cacheLimitBytes / GB).toFixed(2) : "";
  $("keystores").value = (s.localKeystores || []).join("\n");
  for (const n of document.querySelectorAll("#settings-form .field-error")) n.textContent = "";
  syncDefaultPolicy();
}

function syncDefaultPolicy() {
  const on = $("default-controlled").checked;
  for (const id of ["default-min", "default-max", "default-suspend", "default-autostart"]) $(id).disabled = !on;
}

/** Reads the form; returns {settings} or {errors: {inputId: message}}. */
function read() {
  const errors = {};
  const threshold = Number($("idle-threshold").value);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > 86400) errors["idle-threshold"] = "Enter whole seconds from 1 to 86400 (24 hours).";
  let policy = null;
  try { policy = readPolicy("default"); } catch (e) { errors["default-min"] = e.message; }
  const mirror = $("image-mirror").value.trim();
  if (mirror) {
    let url = null;
    try { url = new URL(mirror); } catch { /* reported below */ }
    if (!url || !/^https?:$/.test(url.protocol)) errors["image-mirror"] = "Enter a web address starting with https:// (or leave it empty).";
  }
  const limitText = $("cache-limit").value.trim();
  const limit = Number(limitText);
  if (!limitText || !isFinite(limit) || limit < 0.25 || limit > 16384) errors["cache-limit"] = "Enter a size in GB from 0.25 to 16384.";
  const keystores = $("keystores").value.split("\n").map((l) => l.trim()).filter(Boolean);
  const relative = keystores.find((p) => !p.startsWith("/") && !/^[A-Za-z]:[\\/]/.test(p));
  if (relative) errors["keystores"] = `“${relative}” is not a full path (it must start with /).`;
  if (Object.keys(errors).length) return { errors };
  return {
    settings: {
      ...loaded,
      idleThresholdSecs: threshold, defaultIdlePolicy: policy, hypervisor: $("hypervisor").value,
      imageMirror: mirror || null, cacheLimitBytes: Math.round(limit * GB), localKeystores: keystores,
    },
  };
}

async function save() {
  for (const n of document.querySelectorAll("#settings-form .field-error")) n.textContent = "";
  for (const n of document.querySelectorAll("#settings-form [aria-invalid]")) n.removeAttribute("aria-invalid");
  const { settings, errors } = read();
  if (errors) {
    for (const [id, text] of Object.entries(errors)) {
      $(id).setAttribute("aria-invalid", "true");
      $(id + "-error").textContent = text;
    }
    $(Object.keys(errors)[0]).focus();
    say("settings-message", "Not saved: please correct the fields marked below.", "error");
    return;
  }
  try {
    const answer = await call("save_settings", { settings });
    loaded = answer.settings;
    fill(loaded);
    const restart = (answer.restartNeeded || []).map((f) => FIELD_NAMES[f] || f);
    say("settings-message", restart.length
      ? `Saved. Restart CernVM WebAPI (Quit from the tray, then start it again) for the new ${restart.join(", ")} to take effect.`
      : "Saved. The new settings apply now.", restart.length ? "warn" : "ok");
    loadCache();
  } catch (e) {
    say("settings-message", "Not saved: " + e.message, "error");
  }
}

async function loadCache() {
  try {
    const c = await call("cache_info");
    $("cache-size").textContent = `${bytes(c.bytes)} used of ${bytes(c.limitBytes)}`;
    // An image is named by its checksum; people recognise the file name of its download address.
    const label = (i) => (i.url && i.url.split("/").pop()) || i.name;
    $("cache-images").replaceChildren(...(c.images || []).map((i) =>
      el("li", { title: i.url || i.name }, `${label(i)} · ${bytes(i.bytes)}`, i.inUse ? el("span", { class: "tag", text: "in use" }) : null)));
  } catch (e) {
    $("cache-size").textContent = "Cannot read the cache: " + e.message;
  }
}

async function clearCache() {
  const button = $("clear-cache");
  button.disabled = true;
  try {
    const r = await call("clear_cache");
    say("cache-message", `Freed ${bytes(r.freedBytes)}. Images in use by a VM were kept.`, "ok");
  } catch (e) {
    say("cache-message", "Not cleared: " + e.message, "error");
  } finally {
    button.disabled = false;
    loadCache();
  }
}

function siteList(listId, emptyText, items, label, action) {
  const list = $(listId);
  if (!items.length) { list.replaceChildren(el("li", { class: "empty", text: emptyText })); return; }
  list.replaceChildren(...items.map((it) => el("li", {},
    el("span", { class: "site", text: it.origin }), el("span", { class: "muted", text: it.note }),
    el("button", { type: "button", "aria-label": `${label} ${it.origin}`, text: label, onclick: () => action(it.origin) }))));
}

async function loadBlocked() {
  try {
    const sites = await call("blocked_sites");
    siteList("blocked-list", "No website is blocked.", sites.map((s) => ({ origin: s.origin, note: s.sinceMs ? "since " + dateTime(s.sinceMs) : "" })),
      "Unblock", (origin) => call("unblock_site", { origin }).then(loadBlocked).catch((e) => onError(e.message)));
  } catch (e) { siteList("blocked-list", "Cannot read the blocked sites: " + e.message, [], "", null); }
}

async function loadRemembered() {
  try {
    const sites = await call("remembered_sites");
    siteList("remembered-list", "No answer is remembered.", sites.map((s) => ({ origin: s.origin, note: s.allowed ? "always allowed" : "always denied" })),
      "Forget", (origin) => call("forget_site", { origin }).then(loadRemembered).catch((e) => onError(e.message)));
  } catch (e) { siteList("remembered-list", "Cannot read the remembered answers: " + e.message, [], "", null); }
}

async function setAutostart() {
  const box = $("autostart");
  try {
    await call("set_start_at_login", { enabled: box.checked });
    say("autostart-message", box.checked ? "CernVM WebAPI starts when you log in." : "CernVM WebAPI no longer starts at login.", "ok");
  } catch (e) {
    box.checked = !box.checked;
    say("autostart-message", "Not changed: " + e.message, "error");
  }
}
