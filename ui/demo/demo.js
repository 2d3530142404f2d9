// The demo page's script: connects with the promise API of cvmwebapi.js, requests a session from the
// demo site's signed VMCP endpoint, and wires every session action, state, progress and idle policy.
// Query parameters: ?vmcp=URL (default: ./vmcp next to this page), ?daemon=URL (default: the standard port).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const q = new URLSearchParams(location.search);
  const STATE_LABELS = ["Not yet created", "Available", "Powered off", "Saved (hibernated)", "Paused", "Running"];
  const DF_SUSPEND = 1, DF_AUTOSTART = 2;
  let client = null, session = null;

  $("vmcp").value = q.get("vmcp") || new URL("vmcp", location.href).href;
  const options = q.get("daemon") ? { daemonURL: q.get("daemon") } : {};

  /** Appends a line to the event log (newest first); the tests read it too. */
  function log(source, name, args) {
    const li = document.createElement("li");
    li.dataset.source = source;
    li.dataset.event = name;
    li.textContent = `${new Date().toLocaleTimeString()} ${source}.${name}(${(args || []).map((a) => JSON.stringify(a)).join(", ")})`;
    $("log").prepend(li);
  }

  function setProgress(message, fraction) {
    if (typeof fraction === "number") $("progress").value = fraction;
    $("progress-text").textContent = message || "";
  }

  function render() {
    if (!session) return;
    $("vm").hidden = false;
    const s = session.state;
    $("state").textContent = `${STATE_LABELS[s] || "Unknown"} (${session.stateName})`;
    $("state").dataset.state = session.stateName;
    const link = $("api-link");
    if (session.apiAvailable && session.apiURL) {
      link.href = session.apiURL;
      link.textContent = session.apiURL;
      link.setAttribute("aria-disabled", "false");
    } else {
      link.removeAttribute("href");
      link.textContent = "not reachable";
      link.setAttribute("aria-disabled", "true");
    }
    const c = session.config;
    const rows = [["CPUs", c.cpus], ["Memory", c.memory + " MB"], ["Disk", c.disk + " MB"], ["CPU cap", c.executionCap + " %"],
      ["CernVM version", c.cernvmVersion], ["Flags", c.flags], ["API URL", c.apiURL], ["Remote display", c.rdpURL]];
    $("config").replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement("tr");
      const a = document.createElement("td"); a.textContent = k;
      const b = document.createElement("td"); b.textContent = v == null ? "–" : String(v);
      tr.append(a, b);
      return tr;
    }));
    if (c.executionCap != null) $("cap").value = c.executionCap;
    if (c.daemonControlled != null) {
      $("idle-controlled").checked = Number(c.daemonControlled) === 1;
      $("idle-min").value = c.daemonMinCap;
      $("idle-max").value = c.daemonMaxCap;
      $("idle-suspend").checked = (Number(c.daemonFlags) & DF_SUSPEND) !== 0;
      $("idle-autostart").checked = (Number(c.daemonFlags) & DF_AUTOSTART) !== 0;
    }
  }

  function adopt(s) {
    session = s;
    ["stateChanged", "apiStateChanged", "resolutionChanged", "failure", "started", "progress", "completed", "failed", "lengthyTask"]
      .forEach((name) => s.on(name, (...args) => { log("session", name, args); render(); }));
    s.on("stateVariables", render);
    s.on("progress", (msg, f) => setProgress(msg, f));
    s.on("completed", (msg) => setProgress(msg, 1));
    s.on("failed", (msg, code) => setProgress(`${msg} (${code})`));
    render();
  }

  async function act(action) {
    if (!session) return;
    log("page", action, []);
    try {
      const msg = await session[action]();
      if (msg) log("reply", action, [msg]);
      if (action === "close") { /* the session object stays to show the final state */ }
    } catch (e) {
      log("reply", action + "Failed", [e.message, e.code]);
    }
    render();
  }

  document.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => act(b.dataset.action)));

  $("request-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!client) return;
    $("request").disabled = true;
    setProgress("Requesting a session…", 0);
    log("page", "requestSession", [$("vmcp").value]);
    try {
      const s = await client.requestSession($("vmcp").value, {
        onProgress: (msg, f) => setProgress(msg, f),
        onLengthyTask: (msg, on) => setProgress(on ? "Please answer the CernVM WebAPI window" : msg),
      });
      log("page", "session", [s.session_id]);
      setProgress("Session ready", 1);
      adopt(s);
    } catch (e) {
      setProgress(`${e.message} (${e.code})`);
      log("page", "requestSessionFailed", [e.message, e.code]);
      $("request").disabled = false;
    }
  });

  $("cap-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!session) return;
    try { await session.set("executionCap", Number($("cap").value)); await session.sync(); log("page", "set", ["executionCap", Number($("cap").value)]); } catch (e) { log("reply", "setFailed", [e.message, e.code]); }
    render();
  });

  $("idle-apply").addEventListener("click", async () => {
    if (!session) return;
    const flags = ($("idle-suspend").checked ? DF_SUSPEND : 0) | ($("idle-autostart").checked ? DF_AUTOSTART : 0);
    const values = { daemonControlled: $("idle-controlled").checked ? 1 : 0, daemonMinCap: Number($("idle-min").value),
      daemonMaxCap: Number($("idle-max").value), daemonFlags: flags };
    // The app validates the merged policy after every `set` (daemonMaxCap >= daemonMinCap), so the
    // order matters: move the bound that makes room first, and switch control on last.
    const currentMin = Number(session.config.daemonMinCap) || 0;
    const caps = values.daemonMaxCap >= currentMin ? ["daemonMaxCap", "daemonMinCap"] : ["daemonMinCap", "daemonMaxCap"];
    try {
      for (const k of [...caps, "daemonFlags", "daemonControlled"]) await session.set(k, values[k]);
      await session.sync();
      log("page", "idlePolicy", [values]);
    } catch (e) { log("reply", "idlePolicyFailed", [e.message, e.code]); }
    render();
  });

  CVM.startCVMWebAPI((plugin) => {
    client = plugin;
    $("connection").textContent = `connected (protocol ${plugin.version}${plugin.daemonVersion ? ", app " + plugin.daemonVersion : ""})`;
    $("connection").dataset.state = "connected";
    $("request").disabled = false;
    log("plugin", "connected", [plugin.version]);
    ["disconnected", "reconnected", "privileged"].forEach((n) => plugin.on(n, (...a) => {
      log("plugin", n, a);
      $("connection").textContent = n === "disconnected" ? "disconnected (start the app and reload)" : $("connection").textContent;
    }));
  }, (message, code) => {
    $("connection").textContent = `${message} (${code})`;
    $("connection").dataset.state = "failed";
    log("plugin", "connectFailed", [message, code]);
  }, options);
})();
