// IPC with the tray app: the Tauri commands the panel's capability grants and the events the app sends.
// Uses the global `window.__TAURI__` (the app sets `app.withGlobalTauri`); every error becomes a string.

const tauri = window.__TAURI__;

/** Whether the page runs inside the app's panel window (and not, say, in a browser). */
export const inApp = Boolean(tauri && tauri.core && tauri.core.invoke);

/** Calls command `cmd` with `args`; rejects with a readable message. */
export async function call(cmd, args) {
  if (!inApp) throw new Error("This page must be opened from the CernVM WebAPI tray app.");
  try {
    return await tauri.core.invoke(cmd, args || {});
  } catch (e) {
    throw new Error(typeof e === "string" ? e : (e && e.message) || String(e));
  }
}

/** Listens to app event `name`; `handler` gets the payload. Returns a promise of the unlisten function. */
export function on(name, handler) {
  if (!inApp || !tauri.event) return Promise.resolve(() => {});
  return tauri.event.listen(name, (e) => handler(e.payload));
}
