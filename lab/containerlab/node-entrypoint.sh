#!/usr/bin/env bash
# The containerlab node's entry point (image target `lab` of the Dockerfile): an HTTP server on
# port 8080 that answers "hello from <node>", as the netns lab's nodes do, then ferrolb with the
# node's command (the `cmd` of ferrolb.clab.yml).
set -euo pipefail
python3 -c '
import http.server, socket, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + sys.argv[1] + "\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
class DualStack(http.server.ThreadingHTTPServer): address_family = socket.AF_INET6
DualStack(("::", 8080), Answer).serve_forever()' "$(hostname)" &
exec /usr/local/bin/ferrolb "$@"
