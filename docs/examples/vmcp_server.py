#!/usr/bin/env python3
"""A minimal VMCP endpoint for CernVM WebAPI, using only the Python standard library.

CernVM WebAPI fetches   GET /vmcp?cvm_salt=<64 chars>&cvm_hostid=<64 hex>
and expects a JSON object signed for that salt with the key its keystore lists for your domain.

The signature (RSA PKCS#1 v1.5 SHA-512 or Ed25519) is made by `cvmwebapi vmcp sign`, because the
standard library has no Ed25519 or RSA signing. The document goes to it on stdin and arguments are
passed as a list (never through a shell).

    cvmwebapi keygen --algorithm ed25519 --out mysite      # once: mysite.key (secret), mysite.pub
    python3 vmcp_server.py --key mysite.key --port 5000

Then trust mysite.pub for your domain (a keystore line `your.domain=<contents of mysite.pub>`).
Serve it behind https in production (a reverse proxy); plain http is accepted only on loopback.
"""

import argparse
import json
import re
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SALT = re.compile(r"^[A-Za-z0-9-]{64}$")
HOST_ID = re.compile(r"^[0-9a-f]{64}$")


def machine_config(host_id):
    """The VM this site offers. Only strings and 32-bit integers: other JSON types are ignored by
    the daemon, so `cvmwebapi vmcp sign` refuses them. `host_id` is a stable pseudonymous id of the
    volunteer's computer for your domain (use it to tell machines apart, if you need to)."""
    return {
        "name": "example-vm",          # letters, digits and + - _ ~ only
        "secret": "change-this-secret",  # protects the session; keep it per user in a real site
        "cpus": 1,
        "memory": 512,
        "disk": 1024,
        "flags": 1,                     # 64-bit guest
        "userData": "[cernvm]\nusers=user:users:user\n",
    }


class Handler(BaseHTTPRequestHandler):
    key_file = None
    cvmwebapi = "cvmwebapi"

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/vmcp":
            return self.reply(404, {"error": "not found"})
        query = parse_qs(url.query)
        salt = query.get("cvm_salt", [""])[-1]
        host_id = query.get("cvm_hostid", [""])[-1]
        if not SALT.match(salt) or not HOST_ID.match(host_id):
            return self.reply(400, {"error": "cvm_salt and cvm_hostid are required"})
        document = json.dumps(machine_config(host_id))
        try:
            signed = subprocess.run(
                [self.cvmwebapi, "vmcp", "sign", "--key", self.key_file, "--salt", salt],
                input=document.encode(), capture_output=True, timeout=30, check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as e:
            self.log_error("signing failed: %s", getattr(e, "stderr", e))
            return self.reply(500, {"error": "signing failed"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(signed)))
        self.end_headers()
        self.wfile.write(signed)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--key", required=True, help="private key file made by cvmwebapi keygen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument("--cvmwebapi", default="cvmwebapi", help="path of the cvmwebapi program")
    args = parser.parse_args()
    Handler.key_file = args.key
    Handler.cvmwebapi = args.cvmwebapi
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/vmcp", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
