// Consent dialog: shows the request the app injected as window.__CONSENT__ and sends the answer
// with the one command this window may call. Deny is the default (focused; Escape and Enter on
// anything but an enabled, focused Allow deny). Allow is enabled only after a delay that restarts
// whenever the window regains focus, so a click or key meant for the website cannot land on it.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const data = window.__CONSENT__;
  const invoke = window.__TAURI__ && window.__TAURI__.core && window.__TAURI__.core.invoke;
  const allow = $("allow"), deny = $("deny"), hint = $("hint"), remember = $("remember");
  if (!data || !invoke) {
    $("main").hidden = false;
    hint.textContent = "This dialog must be opened by the CernVM WebAPI app.";
    return;
  }

  const req = data.request, o = data.origin;
  const mb = (n) => n >= 1024 ? (n / 1024).toFixed(n % 1024 ? 1 : 0) + " GB" : n + " MB";
  $("o-scheme").textContent = o.scheme ? o.scheme + "://" : "";
  $("o-sub").textContent = o.subdomain;
  $("o-reg").textContent = o.registrable;
  $("o-port").textContent = o.default_port || o.port == null ? "" : ":" + o.port;
  const trust = $("trust");
  trust.textContent = req.trusted
    ? "✔ Trusted: its configuration is signed with a key CernVM WebAPI trusts."
    : "⚠ Not in the list of trusted websites.";
  trust.className = "trust " + (req.trusted ? "trusted" : "untrusted");
  $("insecure").hidden = !o.insecure;
  $("vm").textContent = data.vm_name_display;
  $("cpus").textContent = String(req.cpus);
  $("memory").textContent = mb(req.memory_mb);
  $("disk").textContent = mb(req.disk_mb);
  $("idle").textContent = req.idle_control
    ? "Yes: faster while you are away, slower when you are back"
    : "No";
  document.title = "CernVM WebAPI: allow a new virtual machine?";

  const delay = Number(data.allow_delay_ms) || 1500;
  let timer = null;
  function arm() {
    allow.disabled = true;
    hint.textContent = "Allow becomes available in a moment.";
    clearTimeout(timer);
    timer = setTimeout(() => { allow.disabled = false; hint.textContent = ""; }, delay);
  }
  window.addEventListener("focus", arm);
  window.addEventListener("blur", () => { clearTimeout(timer); allow.disabled = true; });
  $("main").hidden = false; // shown only once filled in (tests wait for the first paint)
  arm();
  deny.focus();

  let sent = false;
  function answer(ok) {
    if (sent || (ok && allow.disabled)) return;
    sent = true;
    invoke("consent_answer", { allow: ok, remember: remember.checked }).catch((e) => {
      sent = false;
      hint.textContent = String(e);
      if (ok) arm();
    });
  }
  allow.addEventListener("click", () => answer(true));
  deny.addEventListener("click", () => answer(false));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); answer(false); }
    else if (e.key === "Enter" && !(document.activeElement === allow && !allow.disabled)) {
      e.preventDefault(); answer(false);
    }
  });
})();
