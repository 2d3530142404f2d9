// The harness's VMCP signer reproduces the spec's canonical buffer: the spec's signature vector verifies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, createVerify } from "node:crypto";
import { canonicalBuffer, encodeValue } from "./lib/vmcp.mjs";

// The public key of the original tutorial's "test.local" development key (protocol spec §4.7).
const TEST_LOCAL_SPKI = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAoZXUkcImqwpdUUBiNuZ0WsmAFu+RbpOnP1aVGVMCs2TpnDBAKh0QX0fU0qOlCobgXlSZN3NJuWkvE3LQYVIt26oGkSOixg7bAWSn0R/L1P24gGC+CvPUM0FZRnHqhiOIxNR5nTqbz8t6iHT5DOyMfFBN53sTuKZz4zt/QRGq5NKUiikyZvX3luseP1NC8D+dY5LWOn9drZ+XB1YmU/Ndpp2t0ppQz2fbnNPa4M+PXCO5vgRm0KJV5DC8knFTj7ypNaHN+UOo7uJ1bOYUV9jtPicJrQo9vt/zqYFyxBWJqGCUZ8ON39lxuIPBB0MeP5GjaGPRj47Y1Qbc8ktAYndvBQIDAQAB";

test("canonical buffer of spec test vector 2 matches the spec, byte for byte", () => {
  const doc = { name: "cvm-test_vm2", secret: "s3cr3t", cpus: 2, memory: 512, disk: 0, flags: 9, cernvmVersion: "latest",
    cernvmFlavor: "prod", executionCap: 50, diskURL: "http://127.0.0.1:8000/img/disk.vdi.gz",
    diskChecksum: "0".repeat(64), userData: "[cernvm]\nusers=user:users:${password:changeme}\n", canOverride: "password", apiPort: 80 };
  const expected = ["apiport=80", "canoverride=password", "cernvmflavor=prod", "cernvmversion=latest", "cpus=2", "disk=0",
    "diskchecksum=" + "0".repeat(64), "diskurl=http%3A%2F%2F127.0.0.1%3A8000%2Fimg%2Fdisk.vdi.gz", "executioncap=50", "flags=9",
    "memory=512", "name=cvm-test_vm2", "secret=s3cr3t", "userdata=%5Bcernvm%5D%0Ausers%3Duser%3Ausers%3A%24%7Bpassword%3Achangeme%7D%0A",
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-a"].join("\n");
  assert.equal(canonicalBuffer(doc, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-a"), expected);
  assert.equal(encodeValue("a b!*'()~._-"), "a%20b%21%2A%27%28%29~._-");
});

test("spec test vector 1 verifies with the test-local public key over our canonical buffer", () => {
  const spki = TEST_LOCAL_SPKI;
  const doc = { name: "MyFirstVM", secret: "pr0t3ct_this", userData: "[amiconfig]\nplugins=cernvm\n[cernvm]\nusers=user:users:user\n",
    memory: 128, cpus: 1, disk: 1024, flags: 49 };
  const sig = "B5KLGy/eaFz2QBWDNV1pGEA8fTRF1A3zCDULwBhqlfIaSvtrTpNO7b8SZKbUKv5cwqCW9gisobBSoN2unh08jx8RJr1wKSEe9lrkFKF5pXrusTu3ke2od9nM+xI83EtOZ6hL+FePb9t/elMu9/t4EbcpSV9YDLUKKb0axMkQKD2ADSrRaebabqOtR4slYk2WWqE8o2yiYSiiu7aTfLMFlBWaOciWYoqboAb6Bkwbvtkqxsh3xb9iEB8T1TqWU//4GpMjd/+2MadICk1pDDatCg9GqdqQdWL+DMN/1Vuhm+qOgft8Y8h3/Hx11c4DjA4DBmDISxQzRGnG7en4+I3eRw==";
  const key = createPublicKey({ key: Buffer.from(spki, "base64"), format: "der", type: "spki" });
  const verify = (buf) => { const v = createVerify("sha512"); v.update(buf); return v.verify(key, sig, "base64"); };
  const salt = "TestSalt0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ-xy";
  assert.ok(verify(canonicalBuffer(doc, salt)), "spec vector must verify");
  assert.ok(!verify(canonicalBuffer({ ...doc, cpus: 2 }, salt)), "a changed field must not verify");
  assert.ok(!verify(canonicalBuffer(doc, salt.replace("x", "X"))), "a changed salt must not verify");
});
