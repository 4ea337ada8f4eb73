"""A tiny revision for the emulator tests: answers JSON about itself, logs each request.

``python echo.py`` listens on ``$PORT``. ``GET /`` answers ``{"revision", "greeting"}``;
``GET /env/NAME`` answers one env var (test values only); ``GET /crash`` exits with code 7;
``GET /status/NNN`` answers with status NNN (a health endpoint that fails, for probes).
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/crash":
            print(json.dumps({"severity": "ERROR", "message": "crashing on purpose"}), flush=True)
            os._exit(7)
        if self.path.startswith("/status/"):
            self.send_response(int(self.path[len("/status/") :]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/env/"):
            body = {"value": os.environ.get(self.path[len("/env/") :])}
        else:
            body = {
                "revision": os.environ.get("K_REVISION"),
                "service": os.environ.get("K_SERVICE"),
                "greeting": os.environ.get("GREETING"),
                "pid": os.getpid(),
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(json.dumps({"severity": "INFO", "message": format % args, "path": self.path}))


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"echo listening on {port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
