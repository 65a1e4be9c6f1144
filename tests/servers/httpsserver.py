#!/usr/bin/python3
"""
NAME
    httpsserver.py - a small HTTPS server for mxlane's MTA-STS tests

SYNOPSIS
    httpsserver.py --root DIR --cert FILE --key FILE [--address 127.0.0.X]
                   [--port PORT] [--port-file FILE] [--log FILE]
                   [--watch-pid PID]

DESCRIPTION
    Serves the files under DIR/HOST over HTTPS (http.server and ssl of the
    standard library) on one loopback address, HOST being the request's
    Host: name without its port, so that queuerun can fetch
    https://mta-sts.DOMAIN/.well-known/mta-sts.txt from it for several
    domains: DIR/mta-sts.DOMAIN/.well-known/mta-sts.txt, served as
    text/plain; a file that is not there is a 404. One certificate for
    every name (its SAN says which names it is good for); the test makes
    it with its own CA (tests/lib.sh make_ca, make_cert).

    --address must lie in 127.0.0.0/8. --port 0 (the default) picks a free
    port, printed and, with --port-file, written atomically to FILE. With
    --log every request appends "METHOD PATH STATUS HOST" to FILE. SIGTERM
    stops it; so does the end of process PID with --watch-pid.
"""

import argparse
import http.server
import ipaddress
import os
import signal
import ssl
import sys
import threading


def loopback(text):
    if ipaddress.IPv4Address(text) not in ipaddress.IPv4Network("127.0.0.0/8"):
        raise argparse.ArgumentTypeError("%s is not in 127.0.0.0/8" % text)
    return text


def main():
    p = argparse.ArgumentParser(description="HTTPS server for mxlane tests")
    p.add_argument("--root", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--address", type=loopback, default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--watch-pid", type=int)
    a = p.parse_args()

    lock = threading.Lock()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def translate_path(self, path):
            host = self.headers.get("Host", "").rsplit(":", 1)[0].lower()
            if not host or "/" in host or host.startswith("."):
                return os.path.join(a.root, "-nowhere-")
            self.directory = os.path.join(a.root, host)
            return super().translate_path(path)

        def log_request(self, code="-", size="-"):
            if not a.log:
                return
            with lock, open(a.log, "a", encoding="utf-8") as f:
                f.write("%s %s %s %s\n" % (self.command, self.path, code,
                                           self.headers.get("Host", "-")))

        def log_message(self, fmt, *args):
            pass

    httpd = http.server.ThreadingHTTPServer((a.address, a.port), Handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    port = httpd.server_address[1]
    print(port, flush=True)
    if a.port_file:
        tmp = "%s.tmp.%d" % (a.port_file, os.getpid())
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    while not stop.wait(1.0):
        if a.watch_pid:
            try:
                os.kill(a.watch_pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:
                pass
    httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
