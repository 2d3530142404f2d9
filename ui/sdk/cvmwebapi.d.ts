// TypeScript declarations for cvmwebapi.js, the CernVM WebAPI website client library.
// The library defines one global, `CVM`. Load it with a <script> tag; these declarations describe it.

declare namespace CVM {
  /** Session states (2.x numbering). */
  type StateCode = 0 | 1 | 2 | 3 | 4 | 5;
  type StateName = "missing" | "available" | "poweroff" | "saved" | "paused" | "running";

  /** Kinds of notices the library may show; see `Options.notice`. */
  type NoticeKind = "lna" | "consent" | "notRunning" | "safari" | "blocked" | "virtualization";

  interface Options {
    /** Where the app listens. Default http://127.0.0.1:5624, or the daemon that served this file. */
    daemonURL?: string;
    /** Milliseconds without any answer before a request fails with TIMEOUT (default 10000; 0: never). */
    requestTimeout?: number;
    /** Tries of the initial probe (default 4). */
    probeTries?: number;
    /** Milliseconds between probe tries (default 100). */
    probeRetryDelay?: number;
    /** Timeout of the /info probe in milliseconds (default 3000). */
    infoTimeout?: number;
    /** A WebSocket must open within this many milliseconds (default 500). */
    socketTimeout?: number;
    /** After an unexpected disconnect, how long to try reconnecting (default 2000 ms). */
    reconnectWindow?: number;
    /** Milliseconds between reconnect attempts (default 500). */
    reconnectRetryDelay?: number;
    /** startCVMWebAPI: milliseconds between polls for an app that is not running (default 1000). */
    pollInterval?: number;
    /**
     * The library's small notices (bottom right, class `cvm-notice`): true (default) to show them,
     * false to show none, or a function to render them yourself (text null means "hide").
     */
    notice?: boolean | ((kind: NoticeKind, text: string | null) => void);
    /** A page where visitors can get the app; linked from the "not running" notice. */
    installURL?: string;
    /** A web RDP client for openRDPWindow(); "#host:port,width,height" is appended. */
    rdpClientURL?: string;
    /** Handshake auth token (default ""; the original sent location.hash). */
    auth?: string;
  }

  /** A failure. `code` is the daemon's (negative, e.g. -10) or the library's own (-1001 and below). */
  interface CVMError extends Error {
    name: "CVMError";
    code: number;
    kind: keyof typeof errors | "ERROR";
    detail?: string;
  }

  /** The /info reply of the app. */
  interface Info {
    status: string;
    version: string;
    /** How the app sees this website (the host of the page's origin). */
    domain: string;
    request?: string;
    daemon?: string;
    [key: string]: unknown;
  }

  /** A session's configuration, as the daemon reports it (stateVariables). */
  interface SessionConfig {
    apiURL?: string;
    rdpURL?: string;
    ip?: string;
    cpus?: number;
    disk?: number;
    memory?: number;
    cernvmVersion?: string;
    cernvmFlavor?: string;
    executionCap?: number;
    flags?: number;
    [key: string]: unknown;
  }

  interface FlagsHelper {
    readonly value: number;
    use64bit: boolean;
    useBootDisk: boolean;
    useGuestAdditions: boolean;
    useFloppyIO: boolean;
    headful: boolean;
  }

  interface RequestSessionListeners {
    onStarted?: (message: string) => void;
    onProgress?: (message: string, fraction: number) => void;
    onCompleted?: (message: string) => void;
    onLengthyTask?: (message: string, isLengthy: 0 | 1) => void;
  }

  type Listener = (...args: any[]) => void;

  interface Emitter {
    addEventListener(name: string, fn: Listener): void;
    removeEventListener(name: string, fn: Listener): void;
    /** Subscribes; returns a function that unsubscribes. */
    on(name: string, fn: Listener): () => void;
    off(name: string, fn: Listener): void;
    once(name: string, fn: Listener): () => void;
  }

  /** Plugin events: "connected" (version), "disconnected", "reconnected", "privileged" (0|1),
   *  and for requestSession "started", "progress" (msg, fraction), "completed", "failed" (msg, code). */
  interface WebAPIPlugin extends Emitter {
    on(name: "connected", fn: (version: string) => void): () => void;
    on(name: "disconnected" | "reconnected", fn: () => void): () => void;
    on(name: "privileged", fn: (privileged: 0 | 1) => void): () => void;
    on(name: "started" | "completed", fn: (message: string) => void): () => void;
    on(name: "progress", fn: (message: string, fraction: number) => void): () => void;
    on(name: "failed", fn: (message: string, code: number) => void): () => void;
    on(name: string, fn: Listener): () => void;

    readonly options: Required<Options>;
    readonly daemonURL: string;
    /** The daemon's protocol version after the handshake (e.g. "2.0.12"). */
    version: string | null;
    /** This app's own version, when its /info tells it. */
    daemonVersion: string | null;
    info: Info | null;
    connected: boolean;
    connecting: boolean;
    privileged: boolean | null;
    /** The sessions obtained on this connection (re-requested after a reconnect). */
    readonly sessions: WebAPISession[];

    /**
     * Asks for a session on the VM described by the signed VMCP at `vmcpURL` (served by your site).
     * The app checks the signature and asks the visitor for consent. Resolves when the session's
     * first state has arrived. Compatible form: requestSession(url, cbOk, cbFail).
     */
    requestSession(vmcpURL: string, listeners?: RequestSessionListeners): Promise<WebAPISession>;
    requestSession(vmcpURL: string, cbOk?: (session: WebAPISession) => void,
      cbFail?: (message: string, code: number) => void): Promise<WebAPISession>;
    /** Compatible: connect(cb(true|false), autoLaunch). */
    connect(cbAPIState?: (ok: boolean, error?: CVMError) => void, autoLaunch?: boolean): void;
    /** Connects (promise form). */
    open(): Promise<WebAPIPlugin>;
    /** Closes on purpose; fires "disconnected"; no automatic reconnect. */
    close(): void;
    syncSessions(): void;
    stopService(): void;
    enumSessions(cb?: (sessions: unknown[]) => void): Promise<unknown[]>;
    controlSession(sessionId: number, action: string, cb?: unknown): void;
    /** Low-level compatible send; returns the request id. */
    send(action: string, data?: object, responseEvents?: object | ((data: any, error?: string) => void),
      responseTimeout?: number): string;
  }

  /** Session events: "stateChanged" (state), "apiStateChanged" (0|1, url), "resolutionChanged"
   *  (w, h, bpp), "failure" (flags or message), "started", "progress", "completed", "failed",
   *  "lengthyTask", "stateVariables" (config, properties). */
  interface WebAPISession extends Emitter {
    on(name: "stateChanged", fn: (state: StateCode) => void): () => void;
    on(name: "apiStateChanged", fn: (isUp: 0 | 1, apiURL: string) => void): () => void;
    on(name: "resolutionChanged", fn: (width: number, height: number, bpp: number) => void): () => void;
    on(name: "failure", fn: (flagsOrMessage: number | string) => void): () => void;
    on(name: "started" | "completed", fn: (message: string) => void): () => void;
    on(name: "progress", fn: (message: string, fraction: number) => void): () => void;
    on(name: "failed", fn: (message: string, code: number) => void): () => void;
    on(name: "lengthyTask", fn: (message: string, isLengthy: 0 | 1) => void): () => void;
    on(name: "stateVariables", fn: (config: SessionConfig, properties: Record<string, string>) => void): () => void;
    on(name: string, fn: Listener): () => void;

    readonly plugin: WebAPIPlugin;
    /** The session id on the wire (changes after a reconnect). */
    session_id: number;
    readonly id: number;
    readonly state: StateCode;
    readonly stateName: StateName | "unknown";
    readonly apiAvailable: boolean;
    readonly config: SessionConfig;
    readonly properties: Record<string, string>;
    readonly ip: string;
    readonly memory: number;
    readonly cpus: number;
    readonly disk: number;
    /** "http://127.0.0.1:PORT": the VM's API, forwarded to this computer. */
    readonly apiURL: string;
    readonly rdpURL: string;
    /** Writing sends `set` (fire and forget; use set() to await). */
    executionCap: number;
    version: string;
    flavor: string;
    diskURL: string;
    diskChecksum: string;
    /** Idle policy (see the website integration guide): writing sends `set`. */
    daemonControlled: number;
    daemonMinCap: number;
    daemonMaxCap: number;
    daemonFlags: number;
    /** A helper object; assign a number or { use64bit: true, ... } to change (sends `set flags`). */
    get flags(): FlagsHelper;
    set flags(value: number | Partial<Record<keyof typeof CVM.flags, boolean>>);

    /** Starts the VM; `values` fill the ${macros} of the VMCP's userData. Resolves when accepted. */
    start(values?: Record<string, string | number>): Promise<string>;
    stop(): Promise<string>;
    pause(): Promise<string>;
    resume(): Promise<string>;
    hibernate(): Promise<string>;
    reset(): Promise<string>;
    /** Destroys the VM. */
    close(): Promise<string>;
    /** Asks for the current state; resolves once it arrived. */
    sync(): Promise<void>;
    get(key: string): Promise<string>;
    set(key: string, value: string | number | boolean): Promise<void>;
    getAsync(key: string, cb?: (value: string) => void): Promise<string>;
    setAsync(key: string, value: string | number | boolean, cb?: () => void): Promise<void>;
    getProperty(name: string): string;
    setProperty(name: string, value: string | number): Promise<void>;
    /** Resolves when the session reaches `state`; rejects with TIMEOUT after `timeout` ms if given. */
    waitForState(state: StateCode | StateName, options?: { timeout?: number }): Promise<number>;
    openRDPWindow(): Window | null;
  }

  const version: string;
  const sdkVersion: string;
  let debugLogging: boolean;
  const stateNames: StateName[];
  const flags: { use64bit: 1; useBootDisk: 2; useGuestAdditions: 4; useFloppyIO: 8; headful: 16 };
  const errors: {
    CREATE_ERROR: -1; MODIFY_ERROR: -2; CONTROL_ERROR: -3; DELETE_ERROR: -4; QUERY_ERROR: -5;
    IO_ERROR: -6; EXTERNAL_ERROR: -7; INVALID_STATE: -8; NOT_FOUND: -9; NOT_ALLOWED: -10;
    NOT_SUPPORTED: -11; NOT_VALIDATED: -12; NOT_TRUSTED: -13; STILL_WORKING: -14;
    PASSWORD_DENIED: -20; USAGE_ERROR: -99; NOT_IMPLEMENTED: -100;
    DAEMON_NOT_RUNNING: -1001; BROWSER_BLOCKED: -1002; SAFARI_HTTPS: -1003; TIMEOUT: -1004;
    DISCONNECTED: -1005; DAEMON_ERROR: -1006; NOT_CONNECTED: -1007;
  };

  /** Compatible entry point: cbOK(plugin) once connected; cbFail(message, code) once if not (it keeps polling). */
  function startCVMWebAPI(cbOK: (plugin: WebAPIPlugin) => void,
    cbFail?: ((message: string, code: number) => void) | null, options?: Options): void;
  /** Promise entry point. */
  function connect(options?: Options): Promise<WebAPIPlugin>;
  /** Is the app running? Resolves to its /info reply without connecting. */
  function ping(options?: { daemonURL?: string; timeout?: number }): Promise<Info>;
  /** Changes library-wide defaults; returns the resulting options. */
  function configure(options?: Options): Required<Options>;
  /** Call when the library was injected after the page's load event. */
  function markPageLoaded(): void;
  /** Shows (text) or hides (null) a notice of the given kind. */
  function notice(kind: NoticeKind, text: string | null): void;
  function CVMError(message: string, code?: number, detail?: string): CVMError;

  const detect: {
    safariBlocksLoopback(env: { protocol: string; hostname: string; userAgent: string }): boolean;
    lnaPlan(env: { protocol: string; hostname: string; permission?: string | null }): "none" | "explain" | "denied";
    queryLnaPermission(): Promise<{ name: string; state: PermissionState; status: PermissionStatus } | null>;
    isLoopbackHost(hostname: string): boolean;
  };

  const WebAPIPlugin: { new (options?: Options): WebAPIPlugin; prototype: WebAPIPlugin };
  const WebAPISession: {
    new (plugin: WebAPIPlugin, sessionId: number, init?: (s: WebAPISession) => void): WebAPISession;
    prototype: WebAPISession;
  };
}

interface Window {
  CVM: typeof CVM;
}
