// The Activity tab: the daemon's event log (recent events at open, then live `daemon-event`s), newest
// first, filtered by kind and by session or website. Keeps at most MAX entries.

import { call, on } from "./ipc.js";
import { el, clock, eventText, EVENT_KINDS } from "./format.js";

const MAX = 500;
const $ = (id) => document.getElementById(id);
const events = [];
const seen = new Set();
let lastSeq = 0;
let onEvent = () => {};

/** Loads the recent events and listens for new ones; `notify(event)` is told about each new event. */
export async function initActivity(reportError, notify) {
  onEvent = notify || onEvent;
  const kind = $("filter-kind");
  for (const [k, label] of Object.entries(EVENT_KINDS)) kind.append(el("option", { value: k, text: label }));
  kind.addEventListener("change", render);
  $("filter-subject").addEventListener("change", render);
  $("filter-clear").addEventListener("click", () => { kind.value = ""; $("filter-subject").value = ""; render(); });
  await on("daemon-event", (e) => add([e]));
  try {
    add(await call("recent_events", { afterSeq: 0 }));
  } catch (e) {
    reportError("Cannot read the event log: " + e.message);
  }
}

const vmNames = new Map(); // session name → its VM's name, learnt from session-opened events

function subjectOf(e) {
  if (e.session) return vmNames.has(e.session) ? `${vmNames.get(e.session)} (${e.session})` : e.session;
  return e.origin || e.image || (e.kind === "idle-changed" ? "idle control" : "");
}

function add(list) {
  let fresh = false;
  for (const e of list || []) {
    if (!e || seen.has(e.seq)) continue;
    if (e.kind === "image-progress") { onEvent(e); continue; } // transient: not logged
    seen.add(e.seq);
    if (e.kind === "session-opened" && e.vm) vmNames.set(e.session, e.vm);
    events.push(e);
    lastSeq = Math.max(lastSeq, e.seq);
    fresh = true;
    onEvent(e);
  }
  if (!fresh) return;
  events.sort((a, b) => a.seq - b.seq);
  while (events.length > MAX) seen.delete(events.shift().seq);
  updateSubjects();
  render();
}

function updateSubjects() {
  const select = $("filter-subject");
  const have = new Set([...select.options].map((o) => o.value));
  for (const e of events) {
    const s = subjectOf(e);
    if (s && !have.has(s)) { have.add(s); select.append(el("option", { value: s, text: s })); }
  }
}

function render() {
  const kind = $("filter-kind").value, subject = $("filter-subject").value;
  const shown = events.filter((e) => (!kind || e.kind === kind) && (!subject || subjectOf(e) === subject));
  const body = $("events-body");
  body.replaceChildren(...shown.slice().reverse().map((e) => el("tr", { dataset: { kind: e.kind } },
    el("td", { class: "time" }, el("time", { datetime: new Date(e.at_ms).toISOString(), text: clock(e.at_ms) })),
    el("td", { class: "kind", text: EVENT_KINDS[e.kind] || e.kind }),
    el("td", { class: "subject", text: subjectOf(e) }),
    el("td", { text: eventText(e) }))));
  $("events-empty").hidden = shown.length > 0;
  $("events-count").textContent = `${shown.length} of ${events.length} events`;
}
