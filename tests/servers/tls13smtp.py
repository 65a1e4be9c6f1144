#!/usr/bin/python3
"""
NAME
    tls13smtp.py - an SMTP server that speaks TLS 1.3 only (aiosmtpd)
SYNOPSIS
    tls13smtp.py --address A --port-file F --log F --cert F --key F
                 [--port N] [--watch-pid PID]
DESCRIPTION
    aiosmtpd offering STARTTLS with an ssl context whose only version is
    TLS 1.3 (Python's ssl is OpenSSL, which sends two session tickets
    right after the handshake: the case that used to stall libESMTP).
    --address may be an IPv4 or IPv6 loopback address. Each accepted
    message is one JSON line in the log: the TLS version and cipher of
    its session (null in the clear), the client's address, sender and
    recipients.
"""
import argparse
import asyncio
import json
import os
import socket
import ssl

from aiosmtpd.controller import Controller


class Record:
    def __init__(self, args):
        self.args = args

    async def handle_DATA(self, server, session, envelope):
        sslobj = server.transport.get_extra_info("ssl_object")
        with open(self.args.log, "a") as f:
            f.write(json.dumps({
                "tls_version": sslobj.version() if sslobj else None,
                "tls_cipher": sslobj.cipher()[0] if sslobj else None,
                "peer": session.peer[0],
                "from": envelope.mail_from,
                "rcpts": envelope.rcpt_tos}) + "\n")
        return "250 2.0.0 Ok"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--watch-pid", type=int)
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    family = socket.AF_INET6 if ":" in args.address else socket.AF_INET
    s = socket.socket(family)
    s.bind((args.address, args.port))
    port = s.getsockname()[1]
    s.close()
    c = Controller(Record(args), hostname=args.address, port=port,
                   ready_timeout=10, tls_context=ctx)
    c.start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(args.port_file + ".tmp", args.port_file)
    loop = asyncio.new_event_loop()
    # Bounded: gone with the test shell, or after ten minutes at most.
    for _ in range(1200):
        if args.watch_pid:
            try:
                os.kill(args.watch_pid, 0)
            except OSError:
                break
        loop.run_until_complete(asyncio.sleep(0.5))
    c.stop()


if __name__ == "__main__":
    main()
