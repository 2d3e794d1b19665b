#!/usr/bin/env python3
"""A stand-in for AWS End User Messaging SMS and Voice v2, for tests only (moto does not
implement it).

Answers `X-Amz-Target: PinpointSMSVoiceV2.SendVoiceMessage` (AWS JSON 1.0) with
`{"MessageId": "..."}` and records every such request. Standard library only; binds 127.0.0.1.

    python3 voice_server.py PORT

- `GET /requests`  -> JSON list of recorded requests: {"target", "headers", "body"}
- `POST /reset`    -> forget the recorded requests and any scripted reply
- `POST /respond`  -> script the replies that follow: {"status": 400, "body": {"__type":
  "ValidationException", "Message": "..."}}; `{}` restores the normal reply
"""

import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = []
SCRIPTED = {}

# Headers worth keeping for assertions; the signature itself is not checked.
KEPT_HEADERS = ("x-amz-target", "content-type", "authorization", "x-amz-date")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status, payload, content_type="application/x-amz-json-1.0"):
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status >= 400 and isinstance(payload, dict) and "__type" in payload:
            self.send_header("X-Amzn-ErrorType", payload["__type"])
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            return {"_raw": raw.decode("utf-8", "replace")}

    def do_GET(self):
        if self.path == "/requests":
            with LOCK:
                self._reply(200, list(REQUESTS), "application/json")
        else:
            self._reply(404, {"message": "not found"}, "application/json")

    def do_POST(self):
        body = self._body()
        if self.path == "/reset":
            with LOCK:
                REQUESTS.clear()
                SCRIPTED.clear()
            self._reply(200, {}, "application/json")
            return
        if self.path == "/respond":
            with LOCK:
                SCRIPTED.clear()
                SCRIPTED.update(body)
            self._reply(200, {}, "application/json")
            return
        target = self.headers.get("X-Amz-Target", "")
        if target != "PinpointSMSVoiceV2.SendVoiceMessage":
            self._reply(400, {"__type": "UnknownOperationException", "Message": target})
            return
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() in KEPT_HEADERS}
        with LOCK:
            REQUESTS.append({"target": target, "headers": headers, "body": body})
            scripted = dict(SCRIPTED)
        if scripted:
            self._reply(int(scripted.get("status", 500)), scripted.get("body", {}))
        else:
            self._reply(200, {"MessageId": str(uuid.uuid4())})

    def log_message(self, format, *args):
        # Quiet: the tests read the recorded requests instead.
        pass


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: voice_server.py PORT\n")
        sys.exit(2)
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    sys.stderr.write("voice peer listening on 127.0.0.1:%d\n" % server.server_address[1])
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
