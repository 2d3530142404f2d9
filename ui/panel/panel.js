// Control panel script: asks the shell for the daemon's status through a Tauri command.
(function () {
  "use strict";
  const invoke = window.__TAURI__ && window.__TAURI__.core && window.__TAURI__.core.invoke;
  const text = (id, value) => { document.getElementById(id).textContent = value; };
  if (!invoke) { text("status", "This page must be opened from the CernVM WebAPI tray app."); return; }
  invoke("daemon_status").then((s) => {
    text("status", "Running · listening on " + s.listen);
    text("version", s.version + " (protocol " + s.protocol + ")");
    text("listen", s.listen);
    text("data-dir", s.data_dir);
  }).catch((e) => text("status", "Cannot reach the daemon: " + e));
})();
