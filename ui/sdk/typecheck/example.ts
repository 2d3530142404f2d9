// Compiled by build.sh --check (tsc --noEmit) to prove cvmwebapi.d.ts describes both APIs usably.
/// <reference path="../cvmwebapi.d.ts" />

async function promiseStyle(): Promise<void> {
  CVM.configure({ installURL: "https://example.org/get-cernvm-webapi", notice: (kind, text) => console.log(kind, text) });
  const client = await CVM.connect({ requestTimeout: 15000 });
  const offDisconnected = client.on("disconnected", () => console.log("lost the app"));
  const session = await client.requestSession("https://example.org/vmcp", {
    onProgress: (message, fraction) => console.log(message, Math.round(fraction * 100) + "%"),
  });
  session.on("stateChanged", (state) => console.log(CVM.stateNames[state]));
  session.on("apiStateChanged", (isUp, url) => { if (isUp === 1) console.log("API at", url); });
  const msg: string = await session.start({ password: "secret" });
  await session.waitForState("running", { timeout: 600000 });
  const cpus: string = await session.get("cpus");
  await session.set("executionCap", 50);
  await session.setProperty("team", "blue");
  session.daemonControlled = 1;
  session.daemonMinCap = 10;
  session.daemonMaxCap = 100;
  console.log(msg, cpus, session.apiURL, session.stateName, session.getProperty("team"));
  await session.close();
  offDisconnected();
  client.close();
}

function compatibleStyle(): void {
  CVM.startCVMWebAPI((plugin) => {
    plugin.addEventListener("progress", (message: string, fraction: number) => console.log(message, fraction));
    plugin.requestSession("https://example.org/vmcp", (session) => {
      session.addEventListener("stateChanged", (state: number) => console.log(state));
      session.start();
      session.executionCap = 80;
      session.flags = { headful: true };
      const is64: boolean = session.flags.use64bit;
      session.flags = session.flags.value | CVM.flags.useFloppyIO;
      console.log(is64);
    }, (message, code) => {
      if (code === CVM.errors.NOT_ALLOWED) console.log("the visitor said no:", message);
    });
  }, (message, code) => console.log("not connected", message, code));
}

async function errors(): Promise<void> {
  try {
    await CVM.ping();
  } catch (e) {
    const err = e as CVM.CVMError;
    if (err.kind === "DAEMON_NOT_RUNNING" || err.code === CVM.errors.SAFARI_HTTPS) console.log(err.message);
  }
}

void promiseStyle; void compatibleStyle; void errors;
