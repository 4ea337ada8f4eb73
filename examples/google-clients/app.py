"""A tiny service for the google-clients example: answers with its revision and a greeting."""

import hashlib
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        token = os.environ.get("API_TOKEN", "")
        body = {
            "revision": os.environ.get("K_REVISION"),
            # proves the secret arrived without showing it
            "token_sha256_8": hashlib.sha256(token.encode()).hexdigest()[:8],
        }
        print(json.dumps({"severity": "INFO", "message": f"GET {self.path}"}), flush=True)
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    print("listening", flush=True)
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
