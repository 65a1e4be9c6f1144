#!/usr/bin/python3
"""
NAME
    limitsmtp.py - an SMTP server with a server's limits (aiosmtpd)
SYNOPSIS
    limitsmtp.py --address A --port-file F --log F [--max-rcpts N]
                 [--max-msgs N] [--watch-pid PID]
DESCRIPTION
    Answers 452 4.5.3 to every RCPT past --max-rcpts in one transaction,
    and 421 4.7.0 to the MAIL FROM after --max-msgs messages on one
    connection, then closes it (as Exim's smtp_accept_max_per_connection
    and recipients_max do). Each accepted message is one JSON line in
    the log: connection number, sender, recipients.
"""
import argparse
import asyncio
import json
import os
import socket

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Limits:
    def __init__(self, args):
        self.args = args
        self.conns = 0

    async def handle_MAIL(self, server, session, envelope, address, opts):
        if not hasattr(session, "mxl_conn"):
            self.conns += 1
            session.mxl_conn = self.conns
            session.mxl_msgs = 0
        if session.mxl_msgs >= self.args.max_msgs:
            asyncio.get_event_loop().call_later(0.05, server.transport.close)
            return "421 4.7.0 Too many messages for this connection"
        envelope.mail_from = address
        envelope.mail_options.extend(opts)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, opts):
        if len(envelope.rcpt_tos) >= self.args.max_rcpts:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        session.mxl_msgs += 1
        with open(self.args.log, "a") as f:
            f.write(json.dumps({"conn": session.mxl_conn,
                                "from": envelope.mail_from,
                                "rcpts": envelope.rcpt_tos}) + "\n")
        return "250 2.0.0 Ok"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-rcpts", type=int, default=2)
    ap.add_argument("--max-msgs", type=int, default=2)
    ap.add_argument("--watch-pid", type=int)
    args = ap.parse_args()
    s = socket.socket()
    s.bind((args.address, args.port))
    port = s.getsockname()[1]
    s.close()
    c = Controller(Limits(args), hostname=args.address, port=port,
                   ready_timeout=10)
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
