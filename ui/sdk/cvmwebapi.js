/*!
 * cvmwebapi.js: the website client library of CernVM WebAPI (Rust edition).
 * Talks to the CernVM WebAPI app on the visitor's computer over ws://127.0.0.1:5624.
 * API-compatible with the original cvmwebapi 2.0.x library (CVM.startCVMWebAPI, plugin and
 * session objects, events), plus a promise API (CVM.connect). No dependencies.
 * Written from the protocol specification; licensed MIT OR Apache-2.0.
 */
(function (global) {
  "use strict";

  if (global.CVM && global.CVM.sdkVersion) return; // loaded twice: keep the first instance

  var doc = global.document;
  var SDK_VERSION = "0.1.0";
  var PROTOCOL_VERSION = "2.0.12";

  // ---------------------------------------------------------------------------------------------
  // Constants
  // ---------------------------------------------------------------------------------------------

  var STATE_NAMES = ["missing", "available", "poweroff", "saved", "paused", "running"];

  /** Error codes: the daemon's (negative HVE_* codes) and the library's own (-1000 and below). */
  var ERRORS = {
    CREATE_ERROR: -1, MODIFY_ERROR: -2, CONTROL_ERROR: -3, DELETE_ERROR: -4, QUERY_ERROR: -5,
    IO_ERROR: -6, EXTERNAL_ERROR: -7, INVALID_STATE: -8, NOT_FOUND: -9, NOT_ALLOWED: -10,
    NOT_SUPPORTED: -11, NOT_VALIDATED: -12, NOT_TRUSTED: -13, STILL_WORKING: -14,
    PASSWORD_DENIED: -20, USAGE_ERROR: -99, NOT_IMPLEMENTED: -100,
    // Raised by this library, never by the daemon:
    DAEMON_NOT_RUNNING: -1001, // nothing answers on the daemon's address
    BROWSER_BLOCKED: -1002,    // the browser refused the connection (local-network permission denied)
    SAFARI_HTTPS: -1003,       // Safari blocks ws://127.0.0.1 from https pages
    TIMEOUT: -1004,            // no answer within the request timeout
    DISCONNECTED: -1005,       // the connection to the daemon was lost before the answer came
    DAEMON_ERROR: -1006,       // the daemon answered with an error frame (malformed or refused request)
    NOT_CONNECTED: -1007       // a request was made on a closed connection
  };
  var ERROR_KINDS = {};
  Object.keys(ERRORS).forEach(function (k) { ERROR_KINDS[ERRORS[k]] = k; });

  var FLAGS = { use64bit: 1, useBootDisk: 2, useGuestAdditions: 4, useFloppyIO: 8, headful: 16 };

  var defaults = {
    daemonURL: "http://127.0.0.1:5624",
    requestTimeout: 10000,  // ms without any frame before a request fails (the original's 10 s)
    probeTries: 4,          // initial probe: /info then a WebSocket, 4 tries, 100 ms apart
    probeRetryDelay: 100,
    infoTimeout: 3000,      // the original had none; a frozen daemon must not hang the page
    socketTimeout: 500,     // a WebSocket must open within 500 ms
    reconnectWindow: 2000,  // after an unexpected close, keep trying to reconnect this long
    reconnectRetryDelay: 500,
    pollInterval: 1000,     // startCVMWebAPI: poll for a daemon that is not running yet
    notice: true,           // true | false | function (kind, text or null)
    installURL: "",         // where "not running" notices point visitors (empty: no link)
    rdpClientURL: "",       // openRDPWindow(): a web RDP client, "#host:port,w,h" is appended
    auth: ""                // handshake auth token (the original sent location.hash)
  };

  function guessDaemonURL() {
    // When the daemon itself serves this file (http://127.0.0.1:PORT/js/cvmwebapi.js), talk to it.
    try {
      var s = doc && doc.currentScript;
      if (!s) return null;
      var explicit = s.getAttribute("data-daemon-url");
      if (explicit) return explicit.replace(/\/+$/, "");
      var m = /^(http:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):\d+)\/js\/cvmwebapi(?:\.min)?\.js(?:[?#].*)?$/.exec(s.src || "");
      return m ? m[1] : null;
    } catch (e) { return null; }
  }
  var guessed = guessDaemonURL();
  if (guessed) defaults.daemonURL = guessed;

  var options = {};
  Object.keys(defaults).forEach(function (k) { options[k] = defaults[k]; });

  // ---------------------------------------------------------------------------------------------
  // Small helpers
  // ---------------------------------------------------------------------------------------------

  function log() {
    if (CVM.debugLogging && global.console) global.console.log.apply(global.console, arguments);
  }

  function CVMError(message, code, detail) {
    var e = new Error(message);
    e.name = "CVMError";
    e.code = typeof code === "number" ? code : -1;
    e.kind = ERROR_KINDS[e.code] || "ERROR";
    if (detail) e.detail = detail;
    return e;
  }

  function quiet(promise) { promise.catch(function () {}); return promise; }

  function wsURL(httpURL) { return httpURL.replace(/^http/, "ws"); }

  function isLoopbackHost(hostname) {
    var h = String(hostname || "").toLowerCase();
    return h === "localhost" || h === "[::1]" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) ||
      /\.localhost$/.test(h);
  }

  /**
   * Whether this browser is Safari/WebKit (every iOS browser is), which blocks ws://127.0.0.1 and
   * http://127.0.0.1 from https pages as mixed content. Pure function of its inputs (tested).
   */
  function safariBlocksLoopback(env) {
    if (env.protocol !== "https:") return false;
    if (isLoopbackHost(env.hostname)) return false;
    var ua = env.userAgent || "";
    if (!/AppleWebKit\//.test(ua)) return false;
    if (/(iPhone|iPad|iPod)/.test(ua)) return true; // all iOS browsers use WebKit
    return /Version\/[\d.]+.*Safari\//.test(ua) && !/(Chrome|Chromium|Edg|OPR|Firefox)\//.test(ua);
  }

  /**
   * What to do about the browser's own local-network permission prompt (Chromium, Firefox
   * 2025-2026) before connecting: "none" (no prompt expected), "explain" (a prompt will come: tell
   * the visitor first) or "denied" (the browser will refuse). Pure function of its inputs (tested).
   */
  function lnaPlan(env) {
    if (isLoopbackHost(env.hostname) || env.protocol === "file:") return "none";
    if (env.permission === "granted") return "none";
    if (env.permission === "denied") return "denied";
    if (env.permission === "prompt") return "explain";
    return "none"; // the browser has no such permission: no prompt
  }

  var LNA_PERMISSION_NAMES = ["loopback-network", "local-network-access", "local-network"];

  /** Resolves to { name, state } of the first local-network permission this browser knows, or null. */
  function queryLnaPermission() {
    var perms = global.navigator && global.navigator.permissions;
    if (!perms || !perms.query) return Promise.resolve(null);
    var i = 0;
    function next() {
      if (i >= LNA_PERMISSION_NAMES.length) return Promise.resolve(null);
      var name = LNA_PERMISSION_NAMES[i++];
      var q;
      try { q = perms.query({ name: name }); } catch (e) { return next(); }
      return Promise.resolve(q).then(function (status) {
        return { name: name, state: status.state, status: status };
      }, next);
    }
    return next();
  }

  function currentEnv(permission) {
    var loc = global.location || {};
    return {
      protocol: loc.protocol, hostname: loc.hostname,
      userAgent: (global.navigator && global.navigator.userAgent) || "",
      permission: permission
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Notices and dialogs (small, restylable: class names cvm-notice, cvm-dialog, ...)
  // ---------------------------------------------------------------------------------------------

  var NOTICE_TEXT = {
    lna: "Your browser is about to ask whether this website may connect to apps on this device. " +
      "Please allow it: this lets the page talk to the CernVM WebAPI app on your computer, which will " +
      "still ask for your own consent before it runs anything.",
    consent: "Please answer the CernVM WebAPI window on your screen.",
    notRunning: "The CernVM WebAPI app does not seem to run on this computer. Start it (or install it) " +
      "to take part; this page connects as soon as it runs.",
    safari: "Safari does not let secure (https) websites talk to apps on your computer. Please open " +
      "this page in Firefox, Chrome or Edge to use the CernVM WebAPI.",
    blocked: "Your browser blocked this website from connecting to apps on this device. Allow " +
      "\"local network\" / \"apps on this device\" in the site settings and reload the page.",
    virtualization: "Hardware virtualisation is not available on this computer (or is disabled in " +
      "its firmware settings), so the virtual machine cannot run."
  };

  var STYLE =
    ".cvm-notice{position:fixed;right:16px;bottom:16px;z-index:2147483000;max-width:360px;" +
    "padding:12px 32px 12px 14px;background:#fff;color:#1d2733;border:1px solid #c5d0dc;" +
    "border-left:4px solid #2f6fb3;border-radius:6px;box-shadow:0 4px 16px rgba(0,0,0,.15);" +
    "font:14px/1.4 system-ui,sans-serif}" +
    ".cvm-notice a{color:#2f6fb3}" +
    ".cvm-notice-close{position:absolute;top:4px;right:6px;border:0;background:none;font-size:18px;" +
    "cursor:pointer;color:#667}" +
    ".cvm-dialog-overlay{position:fixed;inset:0;z-index:2147483001;background:rgba(255,255,255,.6);" +
    "display:flex;align-items:center;justify-content:center}" +
    ".cvm-dialog{width:70%;max-width:640px;background:#fff;color:#1d2733;border:1px solid #c5d0dc;" +
    "border-radius:8px;box-shadow:0 8px 32px rgba(0,0,0,.2);font:14px/1.4 system-ui,sans-serif}" +
    ".cvm-dialog-title{padding:12px 16px;font-weight:600;border-bottom:1px solid #e3e8ee}" +
    ".cvm-dialog-body{padding:16px;max-height:60vh;overflow:auto}" +
    ".cvm-dialog-body iframe{width:100%;height:300px;border:0}" +
    ".cvm-dialog-buttons{padding:12px 16px;text-align:right;border-top:1px solid #e3e8ee}" +
    ".cvm-dialog-buttons button{margin-left:8px}";

  function injectStyle() {
    if (!doc || doc.getElementById("cvm-sdk-style")) return;
    var st = doc.createElement("style");
    st.id = "cvm-sdk-style";
    st.textContent = STYLE;
    (doc.head || doc.documentElement).insertBefore(st, (doc.head || doc.documentElement).firstChild);
  }

  var activeNotice = null;

  /** Shows (text) or hides (null) the notice of `kind`; one notice at a time. */
  function notice(kind, text) {
    var setting = options.notice;
    if (!setting) return;
    if (typeof setting === "function") {
      try { setting(kind, text); } catch (e) { log("notice handler threw", e); }
      return;
    }
    if (!doc || !doc.body) return;
    if (text == null) {
      if (activeNotice && (kind == null || activeNotice.kind === kind)) {
        activeNotice.el.remove();
        activeNotice = null;
      }
      return;
    }
    injectStyle();
    if (activeNotice) activeNotice.el.remove();
    var el = doc.createElement("div");
    el.className = "cvm-notice cvm-notice-" + kind;
    el.setAttribute("role", "status");
    el.setAttribute("data-cvm-notice", kind);
    var span = doc.createElement("span");
    span.textContent = text;
    el.appendChild(span);
    if (kind === "notRunning" && options.installURL) {
      var a = doc.createElement("a");
      a.href = options.installURL;
      a.target = "_blank";
      a.rel = "noopener";
      a.textContent = " Get CernVM WebAPI";
      el.appendChild(a);
    }
    var close = doc.createElement("button");
    close.className = "cvm-notice-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    close.onclick = function () { notice(kind, null); };
    el.appendChild(close);
    doc.body.appendChild(el);
    activeNotice = { kind: kind, el: el };
  }

  var activeDialog = null;

  function hideDialog() {
    if (activeDialog) { activeDialog.remove(); activeDialog = null; }
  }

  /** Renders a daemon `interact` prompt; `answer(1|2)` is called on a button (not for alerts). */
  function showDialog(kind, title, body, answer) {
    if (!doc || !doc.body) return;
    injectStyle();
    hideDialog();
    var overlay = doc.createElement("div");
    overlay.className = "cvm-dialog-overlay";
    var box = doc.createElement("div");
    box.className = "cvm-dialog";
    box.setAttribute("role", "dialog");
    var head = doc.createElement("div");
    head.className = "cvm-dialog-title";
    head.textContent = String(title || "CernVM WebAPI");
    var content = doc.createElement("div");
    content.className = "cvm-dialog-body";
    if (kind === "confirmLicenseURL") {
      var frame = doc.createElement("iframe");
      frame.src = String(body || "");
      frame.setAttribute("sandbox", "");
      content.appendChild(frame);
    } else {
      content.style.whiteSpace = "pre-wrap";
      content.textContent = String(body || ""); // text, not HTML: the page must not run daemon strings
    }
    var buttons = doc.createElement("div");
    buttons.className = "cvm-dialog-buttons";
    function button(label, result) {
      var b = doc.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.onclick = function () { hideDialog(); if (result && answer) answer(result); };
      buttons.appendChild(b);
    }
    var license = kind === "confirmLicense" || kind === "confirmLicenseURL";
    if (kind === "alert") button("Ok", 0);
    else if (license) { button("Accept License", 1); button("Decline License", 2); }
    else { button("Ok", 1); button("Cancel", 2); }
    overlay.onclick = function (ev) {
      if (ev.target === overlay && kind === "confirm") { hideDialog(); answer(2); }
    };
    box.appendChild(head); box.appendChild(content); box.appendChild(buttons);
    overlay.appendChild(box);
    doc.body.appendChild(overlay);
    activeDialog = overlay;
  }

  // ---------------------------------------------------------------------------------------------
  // Events
  // ---------------------------------------------------------------------------------------------

  function Emitter() { this.__listeners = {}; }

  Emitter.prototype.addEventListener = function (name, fn) {
    if (typeof fn !== "function") return;
    (this.__listeners[name] = this.__listeners[name] || []).push(fn);
  };
  Emitter.prototype.removeEventListener = function (name, fn) {
    var list = this.__listeners[name];
    if (!list) return;
    var i = list.indexOf(fn);
    if (i >= 0) list.splice(i, 1);
  };
  /** Subscribes; returns a function that unsubscribes. */
  Emitter.prototype.on = function (name, fn) {
    var self = this;
    this.addEventListener(name, fn);
    return function () { self.removeEventListener(name, fn); };
  };
  Emitter.prototype.off = Emitter.prototype.removeEventListener;
  Emitter.prototype.once = function (name, fn) {
    var off = this.on(name, function () { off(); fn.apply(this, arguments); });
    return off;
  };
  /** Calls every listener of `name` with `args`; a throwing listener does not stop the others. */
  Emitter.prototype.__fire = function (name, args) {
    log("Firing", name, "(", args, ")");
    var list = (this.__listeners[name] || []).slice();
    for (var i = 0; i < list.length; i++) {
      try { list[i].apply(this, args || []); } catch (e) {
        setTimeout(function (err) { return function () { throw err; }; }(e), 0);
      }
    }
  };

  // ---------------------------------------------------------------------------------------------
  // Probing the daemon
  // ---------------------------------------------------------------------------------------------

  /** GET /info; resolves to the parsed reply or rejects. */
  function probeInfo(base, timeout) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("GET", base + "/info", true);
      xhr.timeout = timeout;
      xhr.onload = function () {
        if (xhr.status !== 200 && xhr.status !== 304) return reject(new Error("HTTP " + xhr.status));
        var info = {};
        try { info = JSON.parse(xhr.responseText); } catch (e) { /* the original never parsed it */ }
        resolve(info);
      };
      xhr.onerror = function () { reject(new Error("network error")); };
      xhr.ontimeout = function () { reject(new Error("timeout")); };
      try { xhr.send(); } catch (e) { reject(e); }
    });
  }

  /** Opens a WebSocket that must be open within `timeout` ms; a late one is closed, not leaked. */
  function openSocket(base, timeout) {
    return new Promise(function (resolve, reject) {
      var ws, done = false;
      try { ws = new WebSocket(wsURL(base)); } catch (e) { return reject(e); }
      var timer = setTimeout(function () {
        if (done) return;
        done = true;
        ws.onopen = function () { ws.close(); };
        ws.onerror = null;
        reject(new Error("timeout"));
      }, timeout);
      ws.onopen = function () {
        if (done) return;
        done = true; clearTimeout(timer);
        ws.onopen = ws.onerror = null;
        resolve(ws);
      };
      ws.onerror = function () {
        if (done) return;
        done = true; clearTimeout(timer);
        reject(new Error("socket error"));
      };
    });
  }

  function delay(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  /** The "light probe with retries": /info then a WebSocket, up to probeTries times. */
  function probe(base, infoTimeout, o) {
    var tries = 0;
    function attempt() {
      tries++;
      var info;
      return probeInfo(base, infoTimeout).then(function (i) {
        info = i;
        return openSocket(base, o.socketTimeout);
      }).then(function (ws) { return { ws: ws, info: info, tries: tries }; }, function (err) {
        if (tries >= o.probeTries) throw err;
        return delay(o.probeRetryDelay).then(attempt);
      });
    }
    return attempt();
  }

  /** Tries to open a WebSocket repeatedly for `windowMs` (the original's "check loop"). */
  function checkLoop(base, windowMs, o) {
    var deadline = Date.now() + windowMs;
    function attempt() {
      var left = deadline - Date.now();
      return openSocket(base, Math.max(50, Math.min(o.socketTimeout, left))).catch(function (err) {
        if (deadline - Date.now() < o.reconnectRetryDelay) throw err;
        return delay(o.reconnectRetryDelay).then(attempt);
      });
    }
    return attempt();
  }

  // ---------------------------------------------------------------------------------------------
  // WebAPIPlugin: one connection to the daemon (the object passed to startCVMWebAPI's cbOK;
  // CVM.connect resolves to it too)
  // ---------------------------------------------------------------------------------------------

  function WebAPIPlugin(opts) {
    Emitter.call(this);
    this.options = {};
    var k;
    for (k in options) this.options[k] = options[k];
    for (k in (opts || {})) if (opts[k] !== undefined) this.options[k] = opts[k];
    this.daemonURL = String(this.options.daemonURL).replace(/\/+$/, "");
    this.version = null;        // the daemon's protocol version, after the handshake
    this.daemonVersion = null;  // this daemon's own version (from /info), when it tells
    this.info = null;           // the /info reply
    this.connected = false;
    this.connecting = false;
    this.privileged = null;    // true/false once the daemon said (the `privileged` event)
    this.socket = null;
    this.authToken = this.options.auth || "";
    this.lastID = 0;
    this.responseCallbacks = {};
    this._sessions = [];
    this._closedByUser = false;
  }
  WebAPIPlugin.prototype = Object.create(Emitter.prototype);
  WebAPIPlugin.prototype.constructor = WebAPIPlugin;

  /**
   * Connects (promise). Rejects with a CVMError: DAEMON_NOT_RUNNING, SAFARI_HTTPS,
   * BROWSER_BLOCKED or TIMEOUT (handshake).
   */
  WebAPIPlugin.prototype.open = function () {
    var self = this;
    if (this.connected) return Promise.resolve(this);
    if (this._opening) return this._opening;
    this.connecting = true;
    this._closedByUser = false;
    var permission = null;
    var p = queryLnaPermission().then(function (perm) {
      permission = perm;
      var plan = lnaPlan(currentEnv(perm && perm.state));
      var infoTimeout = self.options.infoTimeout;
      if (plan === "explain") {
        infoTimeout = 120000; // the browser holds the request while its permission prompt is open
        notice("lna", NOTICE_TEXT.lna);
        if (perm.status && "onchange" in perm.status) {
          perm.status.onchange = function () { if (perm.status.state !== "prompt") notice("lna", null); };
        }
      }
      return probe(self.daemonURL, infoTimeout, self.options);
    }).then(function (r) {
      notice("lna", null);
      self.info = r.info || {};
      self.daemonVersion = self.info.daemon || null;
      return self.__attach(r.ws);
    }).then(function () {
      self.connecting = false;
      self._opening = null;
      return self;
    }, function (err) {
      self.connecting = false;
      self._opening = null;
      notice("lna", null);
      if (err && err.name === "CVMError") throw err;
      throw self.__classifyFailure(permission);
    });
    this._opening = p;
    return p;
  };

  /** Why a probe failed, as the most helpful CVMError. */
  WebAPIPlugin.prototype.__classifyFailure = function (permission) {
    var env = currentEnv(permission && permission.state);
    if (safariBlocksLoopback(env)) {
      return CVMError(NOTICE_TEXT.safari, ERRORS.SAFARI_HTTPS,
        "Safari blocks connections from https pages to " + this.daemonURL + " (mixed content)");
    }
    if (lnaPlan(env) === "denied" || (permission && permission.status && permission.status.state === "denied")) {
      return CVMError(NOTICE_TEXT.blocked, ERRORS.BROWSER_BLOCKED,
        "the browser's " + permission.name + " permission is denied for this site");
    }
    return CVMError("CernVM WebAPI is not running on this computer", ERRORS.DAEMON_NOT_RUNNING,
      "nothing answered at " + this.daemonURL);
  };

  /** Compatible: connect(cb(true|false), autoLaunch). */
  WebAPIPlugin.prototype.connect = function (cbAPIState, autoLaunch) {
    var self = this;
    if (this.connected) { if (cbAPIState) cbAPIState(true); return; }
    var p = this.open();
    if (autoLaunch) {
      p = p.catch(function (err) {
        if (err.code !== ERRORS.DAEMON_NOT_RUNNING) throw err;
        launchViaURLHandler();
        self.connecting = true;
        return checkLoop(self.daemonURL, 5000, self.options).then(function (ws) { return self.__attach(ws); })
          .then(function () { self.connecting = false; return self; }, function () {
            self.connecting = false;
            throw err;
          });
      });
    }
    p.then(function () { if (cbAPIState) cbAPIState(true); },
      function (err) { self.lastError = err; if (cbAPIState) cbAPIState(false, err); });
  };

  function launchViaURLHandler() {
    if (!doc || !doc.body) return;
    var f = doc.createElement("iframe");
    f.style.cssText = "position:absolute;left:-1000px;top:-1000px;width:1px;height:1px;border:0";
    f.src = "cernvm-webapi://launch";
    doc.body.appendChild(f);
    setTimeout(function () { f.remove(); }, 6000);
  }

  /** Adopts an open socket: wires handlers and performs the handshake. Resolves after its reply. */
  WebAPIPlugin.prototype.__attach = function (ws) {
    var self = this;
    this.socket = ws;
    this.connected = true;
    ws.onmessage = function (ev) { self.__onMessage(ev.data); };
    ws.onclose = function () { if (self.socket === ws) self.__onSocketClose(); };
    ws.onerror = function () {};
    return new Promise(function (resolve, reject) {
      self.__request("handshake", { version: PROTOCOL_VERSION, auth: self.authToken }, {
        onResult: function (data) {
          self.version = data && data.version != null ? String(data.version) : null;
          self._handshaken = true;
          resolve();
          self.__fire("connected", [self.version]);
        },
        onError: function (err) {
          reject(err);
          if (self.socket === ws) { self.__teardown(); try { ws.close(); } catch (e) { /* closed */ } }
        }
      });
    });
  };

  WebAPIPlugin.prototype.__onSocketClose = function () {
    var self = this;
    this.__teardown();
    if (this._closedByUser) return; // the original reconnected even after close() [fixed]
    if (!this._handshaken) return;  // lost during the first handshake: open() reports it
    this.connecting = true;
    checkLoop(this.daemonURL, this.options.reconnectWindow, this.options).then(function (ws) {
      self.connecting = false;
      return self.__attach(ws).then(function () { return self.__reheat(); });
    }).catch(function () {
      self.connecting = false;
      self.__handleClose();
    });
  };

  /** Forgets the socket and fails every pending request with DISCONNECTED. */
  WebAPIPlugin.prototype.__teardown = function () {
    hideDialog();
    notice("consent", null);
    this.connected = false;
    this.socket = null;
    var slots = this.responseCallbacks;
    this.responseCallbacks = {};
    for (var id in slots) {
      var slot = slots[id];
      if (slot && slot.timer) clearTimeout(slot.timer);
      if (slot && slot.onError) slot.onError(CVMError("The connection to CernVM WebAPI was lost", ERRORS.DISCONNECTED));
    }
  };

  WebAPIPlugin.prototype.__handleClose = function () {
    hideDialog();
    this.__fire("disconnected", []);
  };

  /** After a reconnect: re-request every session by its VMCP URL and re-bind it to its new id. */
  WebAPIPlugin.prototype.__reheat = function () {
    var self = this;
    var failed = false;
    var sessions = this._sessions.slice();
    return Promise.all(sessions.map(function (entry) {
      return self.__requestSessionId(entry.vmcp, null).then(function (newId) {
        var session = entry.ref;
        session.session_id = newId;
        self.__bindSession(session);
        setTimeout(function () { session.sync(); }, 100);
      }, function (err) {
        log("reheat of", entry.vmcp, "failed:", err);
        failed = true;
      });
    })).then(function () {
      if (failed) self.__fire("disconnected", []);
      else self.__fire("reconnected", []);
    });
  };

  /** Closes the connection on purpose (no reconnect); fires `disconnected`. */
  WebAPIPlugin.prototype.close = function () {
    this._closedByUser = true;
    var ws = this.socket;
    this.__teardown();
    if (ws) { try { ws.close(); } catch (e) { /* already closed */ } }
    this.__handleClose();
  };

  /**
   * Sends an action. `slot` handlers: onResult(data), onEvent(name, args) -> true when final,
   * onError(CVMError). A timer of `timeout` ms (0: none) runs until the first frame for the id.
   */
  WebAPIPlugin.prototype.__request = function (name, data, slot, timeout) {
    var self = this;
    var id = "a-" + (++this.lastID);
    if (!this.connected || !this.socket) {
      if (slot && slot.onError) {
        var err = CVMError("Not connected to CernVM WebAPI", ERRORS.NOT_CONNECTED);
        setTimeout(function () { slot.onError(err); }, 0);
      }
      return id;
    }
    if (slot) {
      this.responseCallbacks[id] = slot;
      var ms = timeout === undefined ? this.options.requestTimeout : timeout;
      if (ms > 0) {
        slot.timer = setTimeout(function () {
          if (self.responseCallbacks[id] !== slot) return;
          delete self.responseCallbacks[id];
          if (slot.onError) slot.onError(CVMError("No answer from CernVM WebAPI to '" + name + "' within " + ms + " ms", ERRORS.TIMEOUT));
        }, ms);
      }
    }
    this.socket.send(JSON.stringify({ type: "action", name: name, id: id, data: data || {} }));
    return id;
  };

  /** Compatible: send(action, data, responseEvents, responseTimeout). */
  WebAPIPlugin.prototype.send = function (action, data, responseEvents, responseTimeout) {
    if (!responseEvents) return this.__request(action, data, null);
    if (typeof responseEvents === "function") {
      var fn = responseEvents;
      return this.__request(action, data, {
        onResult: function (d) { fn(d); }, onError: function (e) { fn(null, e.message); }
      }, responseTimeout);
    }
    var handlers = responseEvents, plugin = this;
    return this.__request(action, data, {
      onEvent: function (name, args) {
        var h = handlers["on" + name.charAt(0).toUpperCase() + name.slice(1)];
        if (h) h.apply(plugin, args);
        return name === "succeed" || name === "failed";
      },
      onError: function (e) { if (handlers.onError) handlers.onError(e.message); }
    }, responseTimeout);
  };

  WebAPIPlugin.prototype.__onMessage = function (raw) {
    var frame;
    try { frame = JSON.parse(raw); } catch (e) { log("unparsable frame", raw); return; }
    if (!frame || typeof frame !== "object") return;
    var id = frame.id;
    if (id) {
      var slot = this.responseCallbacks[id];
      if (!slot) return; // nobody waits for it (as the original)
      if (slot.timer) { clearTimeout(slot.timer); slot.timer = null; }
      if (frame.type === "result") {
        if (slot.persistent) return;
        delete this.responseCallbacks[id];
        if (slot.onResult) slot.onResult(frame.data);
      } else if (frame.type === "error") {
        if (slot.persistent) return;
        delete this.responseCallbacks[id];
        if (slot.onError) {
          var e = CVMError(String(frame.error || "Request refused by CernVM WebAPI"),
            typeof frame.code === "number" ? frame.code : ERRORS.DAEMON_ERROR, frame.detail);
          if (frame.code !== undefined) e.daemonCode = frame.code;
          slot.onError(e);
        }
      } else if (frame.type === "event" && slot.onEvent) {
        var args = Array.isArray(frame.data) ? frame.data : (frame.data == null ? [] : [frame.data]);
        var final = slot.onEvent(String(frame.name), args);
        if (final && !slot.persistent && this.responseCallbacks[id] === slot) delete this.responseCallbacks[id];
      }
      return;
    }
    if (frame.type !== "event") return;
    var dargs = Array.isArray(frame.data) ? frame.data : [];
    if (frame.name === "interact") this.__interact(dargs);
    else {
      if (frame.name === "privileged") this.privileged = dargs[0] == 1;
      this.__fire(String(frame.name), dargs);
    }
  };

  WebAPIPlugin.prototype.__interact = function (args) {
    var self = this;
    var kind = String(args[0]);
    showDialog(kind, args[1], args[2], function (result) {
      self.__request("interactionCallback", { result: result }, null);
    });
  };

  /** Sends requestSession; resolves with the new session id (a number), rejects with CVMError. */
  WebAPIPlugin.prototype.__requestSessionId = function (vmcp, listeners) {
    var self = this;
    return new Promise(function (resolve, reject) {
      self.__request("requestSession", { vmcp: String(vmcp) }, {
        onEvent: function (name, args) {
          if (name === "succeed") { notice("consent", null); resolve(Number(args[1])); return true; }
          if (name === "failed") {
            notice("consent", null);
            var code = typeof args[1] === "number" ? args[1] : -1;
            self.__fire("failed", [args[0], code]);
            reject(CVMError(String(args[0]), code));
            return true;
          }
          if (name === "lengthyTask") {
            notice("consent", args[1] ? (args[0] ? String(args[0]) + " " : "") + NOTICE_TEXT.consent : null);
          }
          self.__fire(name, args);
          if (listeners && listeners[name]) {
            try { listeners[name].apply(null, args); } catch (e) { setTimeout(function () { throw e; }, 0); }
          }
          return false;
        },
        onError: function (err) { notice("consent", null); reject(err); }
      });
    });
  };

  /** Routes every frame whose id is the session id to the session (until the connection ends). */
  WebAPIPlugin.prototype.__bindSession = function (session) {
    this.responseCallbacks[session.session_id] = {
      persistent: true,
      onEvent: function (name, args) { session.handleEvent({ name: name, data: args }); return false; }
    };
  };

  /**
   * Asks the daemon for a session on the VM configuration at `vmcp` (a URL on the website's
   * server). Compatible form: requestSession(vmcp, cbOk(session), cbFail(message, code)).
   * Always returns a Promise<WebAPISession> that resolves when the session's first state arrives.
   * `cbOk` may also be an options object: { onProgress(msg, fraction), onStarted, onCompleted }.
   */
  WebAPIPlugin.prototype.requestSession = function (vmcp, cbOk, cbFail) {
    var self = this;
    var listeners = null;
    if (cbOk && typeof cbOk === "object") {
      listeners = { progress: cbOk.onProgress, started: cbOk.onStarted, completed: cbOk.onCompleted, lengthyTask: cbOk.onLengthyTask };
      cbOk = null;
    }
    var p = this.__requestSessionId(vmcp, listeners).then(function (id) {
      return new Promise(function (resolve) {
        var session = new WebAPISession(self, id, function () { resolve(session); });
        self._sessions.push({ vmcp: String(vmcp), ref: session });
        self.__bindSession(session);
      });
    });
    if (cbOk || cbFail) {
      p.then(function (s) { if (cbOk) cbOk(s); },
        function (err) { if (cbFail) cbFail(err.message, err.code); });
      quiet(p);
    }
    return p;
  };

  WebAPIPlugin.prototype.stopService = function () { this.__request("stopService", {}, null); };

  WebAPIPlugin.prototype.enumSessions = function (cb) {
    var p = new Promise(function (resolve, reject) {
      this.__request("enumSessions", {}, {
        onResult: function (d) { resolve((d && d.sessions) || []); },
        onEvent: function (name, args) {
          if (name === "succeed") resolve(args[0] || []);
          else if (name === "failed") reject(CVMError(String(args[0]), args[1]));
          return name === "succeed" || name === "failed";
        },
        onError: reject
      });
    }.bind(this));
    if (cb) { p.then(cb); quiet(p); }
    return p;
  };

  WebAPIPlugin.prototype.controlSession = function (sessionId, action, cb) {
    this.__request("controlSession", { session: sessionId, action: action }, null);
    void cb; // never answered by any daemon
  };

  /** Sends `sync` for every session (the original did this on window focus). */
  WebAPIPlugin.prototype.syncSessions = function () {
    this._sessions.forEach(function (e) { quiet(e.ref.sync()); });
  };

  /** The sessions obtained on this connection. */
  Object.defineProperty(WebAPIPlugin.prototype, "sessions", {
    get: function () { return this._sessions.map(function (e) { return e.ref; }); }
  });

  // ---------------------------------------------------------------------------------------------
  // WebAPISession
  // ---------------------------------------------------------------------------------------------

  function WebAPISession(plugin, sessionId, initCallback) {
    Emitter.call(this);
    this.plugin = plugin;
    this.session_id = sessionId;
    this.__state = 0;
    this.__apiState = false;
    this.__config = {};
    this.__properties = {};
    this.__valid = true;
    this.__init = initCallback;
    this.__syncWaiters = [];
  }
  WebAPISession.prototype = Object.create(Emitter.prototype);
  WebAPISession.prototype.constructor = WebAPISession;

  function readOnly(name, fn) {
    Object.defineProperty(WebAPISession.prototype, name, {
      get: function () { return this.__valid ? fn.call(this) : undefined; }, enumerable: true
    });
  }
  function readWrite(name, key) {
    Object.defineProperty(WebAPISession.prototype, name, {
      get: function () { return this.__valid ? this.__config[key] : undefined; },
      set: function (v) { this.__config[key] = v; quiet(this.set(key, v)); },
      enumerable: true
    });
  }

  readOnly("id", function () { return this.session_id; });
  readOnly("state", function () { return this.__state; });
  readOnly("stateName", function () { return STATE_NAMES[this.__state] || "unknown"; });
  readOnly("apiAvailable", function () { return this.__apiState; });
  readOnly("config", function () { return Object.assign({}, this.__config); });
  readOnly("properties", function () { return Object.assign({}, this.__properties); });
  ["ip", "memory", "cpus", "disk", "apiURL", "rdpURL"].forEach(function (k) {
    readOnly(k, function () { return this.__config[k]; });
  });
  readWrite("executionCap", "executionCap");
  readWrite("version", "cernvmVersion");
  readWrite("flavor", "cernvmFlavor");
  readWrite("flavor ", "cernvmFlavor"); // the original's name had a trailing space
  readWrite("diskURL", "diskURL");
  readWrite("diskChecksum", "diskChecksum");
  // Idle policy (daemon-controlled CPU cap / pause / hibernate): sent with `set`.
  readWrite("daemonControlled", "daemonControlled");
  readWrite("daemonMinCap", "daemonMinCap");
  readWrite("daemonMaxCap", "daemonMaxCap");
  readWrite("daemonFlags", "daemonFlags");

  Object.defineProperty(WebAPISession.prototype, "flags", {
    enumerable: true,
    get: function () {
      if (!this.__valid) return undefined;
      var self = this;
      var helper = {};
      Object.defineProperty(helper, "value", { get: function () { return Number(self.__config.flags) || 0; }, enumerable: true });
      Object.keys(FLAGS).forEach(function (name) {
        Object.defineProperty(helper, name, {
          enumerable: true,
          get: function () { return ((Number(self.__config.flags) || 0) & FLAGS[name]) !== 0; },
          set: function (on) {
            var v = Number(self.__config.flags) || 0;
            self.flags = on ? (v | FLAGS[name]) : (v & ~FLAGS[name]);
          }
        });
      });
      return helper;
    },
    set: function (v) {
      var value = 0;
      if (typeof v === "number") value = v;
      else if (v && typeof v === "object") {
        value = Number(this.__config.flags) || 0;
        Object.keys(FLAGS).forEach(function (name) {
          if (name in v) value = v[name] ? (value | FLAGS[name]) : (value & ~FLAGS[name]);
        });
      }
      this.__config.flags = value;
      quiet(this.set("flags", value)); // the original only updated its cache [fixed]
    }
  });

  /** Sends a session action; resolves with the daemon's `succeed` arguments, rejects with CVMError. */
  WebAPISession.prototype.__action = function (name, data) {
    var plugin = this.plugin;
    var payload = { session_id: this.session_id };
    for (var k in (data || {})) payload[k] = data[k];
    return quiet(new Promise(function (resolve, reject) {
      plugin.__request(name, payload, {
        onEvent: function (ev, args) {
          if (ev === "succeed") { resolve(args); return true; }
          if (ev === "failed") {
            reject(CVMError(String(args[0]), typeof args[1] === "number" ? args[1] : -1));
            return true;
          }
          return false;
        },
        onError: reject
      });
    }));
  };

  function messageOf(args) { return args && args.length ? String(args[0]) : ""; }

  /** Starts (or restarts) the VM; `values` fill the ${macros} of the VMCP's userData. */
  WebAPISession.prototype.start = function (values) {
    if (!this.__valid) return Promise.reject(CVMError("Session is not valid", ERRORS.INVALID_STATE));
    return this.__action("start", { parameters: values || {} }).then(messageOf);
  };
  /** Destroys the VM; the session is not re-requested after a reconnect any more. */
  WebAPISession.prototype.close = function () {
    var self = this;
    return this.__action("close").then(function (args) {
      var list = self.plugin._sessions;
      for (var i = 0; i < list.length; i++) if (list[i].ref === self) { list.splice(i, 1); break; }
      return messageOf(args);
    });
  };
  ["stop", "pause", "resume", "reset", "hibernate"].forEach(function (name) {
    WebAPISession.prototype[name] = function () {
      return this.__action(name).then(messageOf);
    };
  });

  /** Asks the daemon to resend this session's state; resolves once it arrived. */
  WebAPISession.prototype.sync = function () {
    var self = this, plugin = this.plugin, id = null;
    var p = new Promise(function (resolve, reject) {
      self.__syncWaiters.push(function () {
        var slot = id && plugin.responseCallbacks[id];
        if (slot) { if (slot.timer) clearTimeout(slot.timer); delete plugin.responseCallbacks[id]; }
        resolve();
      });
      id = plugin.__request("sync", { session_id: self.session_id }, {
        onEvent: function (ev, args) {
          if (ev === "failed") { reject(CVMError(String(args[0]), args[1])); return true; }
          return false;
        },
        onError: function (err) {
          // `sync` has no reply of its own: a timeout only means the state did not come back
          reject(err);
        }
      });
    });
    return quiet(p);
  };

  /** Reads one value (apiURL, rdpURL, ip, cpus, memory, disk, executionCap, flags, ...). */
  WebAPISession.prototype.get = function (key) {
    return this.__action("get", { key: String(key) }).then(function (args) {
      return args.length ? String(args[0]) : "";
    });
  };
  WebAPISession.prototype.set = function (key, value) {
    if (typeof value === "boolean") value = value ? 1 : 0; // the daemon drops JSON booleans
    return this.__action("set", { key: String(key), value: value }).then(function () {});
  };
  WebAPISession.prototype.getAsync = function (key, cb) {
    var p = this.get(key);
    if (cb) p.then(cb);
    return p;
  };
  WebAPISession.prototype.setAsync = function (key, value, cb) {
    this.__config[key] = value;
    var p = this.set(key, value);
    if (cb) p.then(function () { cb(); });
    return p;
  };
  WebAPISession.prototype.getProperty = function (name) {
    var v = this.__properties[name];
    return v === undefined ? "" : v;
  };
  WebAPISession.prototype.setProperty = function (name, value) {
    this.__properties[name] = String(value);
    return this.__action("setProperty", { key: String(name), value: value }).then(function () {});
  };

  /** Resolves when the session reaches `state` (number or name); rejects after `timeout` ms. */
  WebAPISession.prototype.waitForState = function (state, opts) {
    var self = this;
    var want = typeof state === "number" ? state : STATE_NAMES.indexOf(String(state));
    var timeout = (opts && opts.timeout) || 0;
    if (this.__state === want) return Promise.resolve(want);
    return new Promise(function (resolve, reject) {
      var timer = null;
      var off = self.on("stateChanged", function (s) {
        if (s === want) { off(); if (timer) clearTimeout(timer); resolve(want); }
      });
      if (timeout > 0) {
        timer = setTimeout(function () {
          off();
          reject(CVMError("Session did not reach state " + state + " within " + timeout + " ms", ERRORS.TIMEOUT));
        }, timeout);
      }
    });
  };

  /** Opens the VM's remote display in a web RDP client, when the site configured one. */
  WebAPISession.prototype.openRDPWindow = function () {
    var rdp = String(this.__config.rdpURL || "");
    var m = /^([^@]*)@(\d+)x(\d+)/.exec(rdp);
    var base = this.plugin.options.rdpClientURL;
    if (!base || !rdp) return null;
    var w = m ? Number(m[2]) : 800, h = m ? Number(m[3]) : 600;
    return global.open(base + "#" + rdp.split("@")[0] + "," + w + "," + h, "cvm-rdp-" + this.session_id,
      "width=" + w + ",height=" + h + ",resizable=yes");
  };

  /** Routes a daemon event addressed to this session. */
  WebAPISession.prototype.handleEvent = function (frame) {
    var name = frame.name, args = frame.data || [];
    switch (name) {
      case "stateVariables":
        this.__config = (args[0] && typeof args[0] === "object") ? args[0] : {};
        this.__properties = (args[1] && typeof args[1] === "object") ? args[1] : {};
        if (this.__init) { var init = this.__init; this.__init = null; init(this); }
        var waiters = this.__syncWaiters;
        this.__syncWaiters = [];
        waiters.forEach(function (w) { w(); });
        this.__fire("stateVariables", [this.config, this.properties]);
        return;
      case "stateChanged":
        this.__state = Number(args[0]);
        break;
      case "apiStateChanged":
        this.__apiState = args[0] == 1;
        break;
      case "resolutionChanged":
        if (typeof this.__config.rdpURL === "string") {
          this.__config.rdpURL = this.__config.rdpURL.split("@")[0] + "@" + args[0] + "x" + args[1] + "x" + args[2];
        }
        break;
      case "lengthyTask": // a long operation of unknown duration on the app's side
        notice("consent", args[1] ? String(args[0] || "The CernVM WebAPI app is busy…") : null);
        break;
      case "failure":
        if (typeof args[0] === "number" && (args[0] & 1)) notice("virtualization", NOTICE_TEXT.virtualization);
        break;
      default:
        break;
    }
    this.__fire(name, args);
  };

  // ---------------------------------------------------------------------------------------------
  // Page-load gating and the entry points
  // ---------------------------------------------------------------------------------------------

  var pageLoaded = !doc || doc.readyState === "complete";
  var loadQueue = [];
  function runWhenLoaded(fn) {
    if (pageLoaded) fn(); else loadQueue.push(fn);
  }
  function markPageLoaded() {
    if (pageLoaded) return;
    pageLoaded = true;
    var q = loadQueue; loadQueue = [];
    q.forEach(function (fn) { fn(); });
  }
  if (!pageLoaded && global.addEventListener) global.addEventListener("load", markPageLoaded);

  /**
   * Compatible entry point. Connects, then calls cbOK(plugin). When the daemon does not run,
   * calls cbFail(message, code) once, shows a notice, and keeps polling every second; cbOK
   * follows when the visitor starts the app. On Safari/https or a blocked permission it stops.
   */
  function startCVMWebAPI(cbOK, cbFail, opts) {
    runWhenLoaded(function () {
      var failedOnce = false;
      function attempt() {
        var plugin = new WebAPIPlugin(opts);
        plugin.open().then(function () {
          notice("notRunning", null);
          if (global.addEventListener) global.addEventListener("focus", function () { plugin.syncSessions(); });
          if (cbOK) cbOK(plugin);
        }, function (err) {
          var fatal = err.code === ERRORS.SAFARI_HTTPS || err.code === ERRORS.BROWSER_BLOCKED;
          if (!failedOnce) {
            failedOnce = true;
            var kind = fatal ? (err.code === ERRORS.SAFARI_HTTPS ? "safari" : "blocked") : "notRunning";
            notice(kind, NOTICE_TEXT[kind]);
            if (cbFail) cbFail(err.message, err.code);
          }
          if (!fatal) setTimeout(attempt, plugin.options.pollInterval);
        });
      }
      attempt();
    });
  }

  /** Promise entry point: resolves to a connected client (a WebAPIPlugin), rejects with CVMError. */
  function connect(opts) {
    return new Promise(function (resolve, reject) {
      runWhenLoaded(function () {
        var plugin = new WebAPIPlugin(opts);
        plugin.open().then(resolve, function (err) {
          if (!opts || opts.notice !== false) {
            var kind = err.code === ERRORS.SAFARI_HTTPS ? "safari" : err.code === ERRORS.BROWSER_BLOCKED ? "blocked" : null;
            if (kind) notice(kind, NOTICE_TEXT[kind]);
          }
          reject(err);
        });
      });
    });
  }

  /**
   * Asks whether the app runs, without connecting: resolves to its /info reply
   * ({status, version, domain, ...}: `domain` is how the app sees this website), rejects with CVMError.
   */
  function ping(opts) {
    var base = String((opts && opts.daemonURL) || options.daemonURL).replace(/\/+$/, "");
    return probeInfo(base, (opts && opts.timeout) || options.infoTimeout).catch(function (err) {
      throw CVMError("CernVM WebAPI is not running on this computer", ERRORS.DAEMON_NOT_RUNNING,
        "GET " + base + "/info failed: " + err.message);
    });
  }

  /** Changes library-wide options (daemonURL, notice, timeouts, installURL, ...). */
  function configure(opts) {
    for (var k in (opts || {})) {
      if (!(k in defaults)) throw new Error("CVM.configure: unknown option " + k);
      options[k] = opts[k];
    }
    return Object.assign({}, options);
  }

  var CVM = {
    version: PROTOCOL_VERSION,
    sdkVersion: SDK_VERSION,
    debugLogging: false,
    markPageLoaded: markPageLoaded,
    startCVMWebAPI: startCVMWebAPI,
    connect: connect,
    ping: ping,
    configure: configure,
    errors: ERRORS,
    stateNames: STATE_NAMES.slice(),
    flags: FLAGS,
    CVMError: CVMError,
    WebAPIPlugin: WebAPIPlugin,
    WebAPISession: WebAPISession,
    // Exposed for tests and for sites that want to decide about their own notices.
    detect: {
      safariBlocksLoopback: safariBlocksLoopback,
      lnaPlan: lnaPlan,
      queryLnaPermission: queryLnaPermission,
      isLoopbackHost: isLoopbackHost
    },
    notice: notice
  };
  global.CVM = CVM;
})(typeof window !== "undefined" ? window : this);
