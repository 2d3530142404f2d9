// VMCP signing as in shared/spec/protocol.md §4.5 (canonical buffer + RSA-SHA512 PKCS#1 v1.5), and a
// loopback VMCP endpoint that signs every reply with the daemon's fresh cvm_salt.
import { createSign, generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";

/** Percent-encodes every UTF-8 byte except the RFC 3986 unreserved set, with upper-case hex. */
export function encodeValue(value) {
  return encodeURIComponent(String(value)).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

/** The buffer the daemon verifies: sorted keys, `lower(key)=enc(value)\n` each, then the salt. */
export function canonicalBuffer(doc, salt) {
  const keys = Object.keys(doc).filter((k) => k.toLowerCase() !== "signature").sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let buf = "";
  for (const k of keys) buf += `${k.toLowerCase()}=${encodeValue(doc[k])}\n`;
  return buf + salt;
}

export function signVmcp(doc, salt, privateKey) {
  for (const [k, v] of Object.entries(doc)) {
    if (typeof v !== "string" && !(Number.isInteger(v) && v >= -2147483648 && v <= 2147483647)) {
      throw new Error(`VMCP field ${k}: only strings and 32-bit integers are signed`);
    }
  }
  const s = createSign("sha512");
  s.update(canonicalBuffer(doc, salt));
  return { ...doc, signature: s.sign(privateKey, "base64") };
}

/** A fresh RSA-2048 key pair; `spki` is the base64 DER SubjectPublicKeyInfo for a keystore line. */
export function makeKey() {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { privateKey, spki: publicKey.export({ type: "spki", format: "der" }).toString("base64") };
}

/**
 * Serves signed VMCP documents on http://127.0.0.1:PORT/vmcp/<name>. `docs` maps a name to a document
 * (or to { doc, key } to sign with another key). Records every request (with the daemon's cvm_salt).
 */
export async function startVmcpServer(key, docs) {
  const requests = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    requests.push({ path: url.pathname, salt: url.searchParams.get("cvm_salt"), hostid: url.searchParams.get("cvm_hostid") });
    const entry = docs[url.pathname.replace(/^\/vmcp\//, "")];
    const salt = url.searchParams.get("cvm_salt");
    if (!entry || !salt) { res.writeHead(404); return res.end("{}"); }
    const { doc, key: signKey } = entry.doc ? entry : { doc: entry, key };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(signVmcp(doc, salt, (signKey || key).privateKey)));
  });
  const port = await new Promise((r) => server.listen(0, "127.0.0.1", () => r(server.address().port)));
  return {
    port, requests,
    url: (name) => `http://127.0.0.1:${port}/vmcp/${name}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}
