// Formatting helpers shared by the panel's views: sizes, times, states, idle policies, event texts.

const STATE_NAMES = ["missing", "available", "poweroff", "saved", "paused", "running"];
const STATE_WORDS = {
  missing: "Not created", available: "Available", poweroff: "Powered off",
  saved: "Hibernated", paused: "Paused", running: "Running",
};

/** The state name ("running") of a state given as name or numeric code. */
export function stateName(state) {
  if (typeof state === "number") return STATE_NAMES[state] || "missing";
  return String(state || "missing").toLowerCase().replace(/[^a-z]/g, "");
}

/** The words a person reads for a state. */
export function stateWords(state) {
  const n = stateName(state);
  return STATE_WORDS[n] || n;
}

export function bytes(n) {
  if (n == null || !isFinite(n)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
}

export function megabytes(mb) {
  return mb >= 1024 ? (mb / 1024).toFixed(mb % 1024 ? 1 : 0) + " GB" : mb + " MB";
}

export function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export const DF_SUSPEND = 1;
export const DF_AUTOSTART = 2;

/** A one-line description of an idle policy {controlled, minCap, maxCap, flags}. */
export function policyText(p) {
  if (!p || !p.controlled) return "Not controlled";
  let text;
  if (p.minCap > 0) text = `Cap ${p.minCap}% while you work, ${p.maxCap}% when idle`;
  else if (p.flags & DF_SUSPEND) text = "Hibernated while you work";
  else text = "Paused while you work";
  if (p.flags & DF_AUTOSTART) text += "; starts when idle";
  return text;
}

/** A short human text for a daemon event's details (everything but time and kind). */
export function eventText(e) {
  switch (e.kind) {
    case "session-opened": return `${e.origin} opened “${e.vm}”`;
    case "session-state-changed": return `now ${stateWords(e.state).toLowerCase()}`;
    case "cap-applied": return `CPU cap set to ${e.cap}%`;
    case "vm-failed": return e.message;
    case "session-closed": return "closed; its VM and files are gone";
    case "image-started": return `${e.image}${e.total ? " (" + bytes(e.total) + ")" : ""}`;
    case "image-progress": return `${e.image}: ${bytes(e.bytes)}${e.total ? " of " + bytes(e.total) : ""}`;
    case "image-downloaded": return `${e.image} (${bytes(e.bytes)}) verified`;
    case "image-failed": return `${e.image}: ${e.message}`;
    case "consent-waiting": return `${e.origin} waits for your answer`;
    case "consent-answered": return `${e.origin}: ${e.allowed ? "allowed" : "denied"}`;
    case "site-blocked": return `${e.origin} blocked`;
    case "site-unblocked": return `${e.origin} unblocked`;
    case "idle-changed": return `${e.idle ? "You are idle" : "You are back"}: ${e.summary}`;
    default: return "";
  }
}

/** Labels of the event kinds, in the order the filter lists them. */
export const EVENT_KINDS = {
  "session-opened": "Session opened",
  "session-state-changed": "State changed",
  "cap-applied": "CPU cap applied",
  "vm-failed": "VM failed",
  "session-closed": "Session closed",
  "image-started": "Download started",
  "image-downloaded": "Image downloaded",
  "image-failed": "Download failed",
  "consent-waiting": "Consent waiting",
  "consent-answered": "Consent answered",
  "site-blocked": "Site blocked",
  "site-unblocked": "Site unblocked",
  "idle-changed": "Idle changed",
};

/** Creates an element with attributes and children (strings become text, never HTML). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null) node.append(c instanceof Node ? c : String(c));
  return node;
}
