"""The API imports only what an upload needs: table reads bring in PyIceberg and Arrow when they run, and the
readiness probe, which asks every few seconds, checks the catalog over plain HTTP (issue #13)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

TABLE_ONLY_PACKAGES = ["pyiceberg", "pyarrow"]

# A catalog that answers GET /v1/config and records the Authorization header it got.
CHILD = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, HTTPServer
seen = []
class Catalog(BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps({"defaults": {}, "overrides": {}}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
server = HTTPServer(("127.0.0.1", 0), Catalog)
threading.Thread(target=server.serve_forever, daemon=True).start()
import os
os.environ["ICEBERG_CATALOG_URI"] = f"http://127.0.0.1:{server.server_port}"
from lakehouse_api.main import create_app
from lakehouse_api.routes.health import _catalog
app = create_app()
started = sorted({m.split(".")[0] for m in sys.modules} & set(PACKAGES))
detail = _catalog(app.state.backends)
after_probe = sorted({m.split(".")[0] for m in sys.modules} & set(PACKAGES))
print(json.dumps({"started": started, "after_probe": after_probe, "seen": seen, "detail": detail}))
"""


def test_neither_start_up_nor_the_readiness_probe_imports_pyiceberg_or_pyarrow() -> None:
    env = {
        **os.environ,
        "LAKEHOUSE_API_KEYS_SHA256": hashlib.sha256(b"unit-test-key").hexdigest(),
        "ICEBERG_WAREHOUSE": "s3://warehouse/",
        "ICEBERG_CATALOG_TOKEN": "catalog-token",
    }
    script = f"PACKAGES = {TABLE_ONLY_PACKAGES!r}\n" + CHILD
    output = subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True)
    result = json.loads(output.stdout.strip().splitlines()[-1])
    assert result["started"] == [] and result["after_probe"] == []
    assert result["seen"] == [["/v1/config?warehouse=s3%3A%2F%2Fwarehouse%2F", "Bearer catalog-token"]]
