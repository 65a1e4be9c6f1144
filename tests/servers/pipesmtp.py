#!/usr/bin/python3
"""
NAME
    pipesmtp.py - an SMTP server that records what arrived in each read
SYNOPSIS
    pipesmtp.py --address A --port-file F --log F [--no-pipelining]
                [--tls-cert F --tls-key F] [--watch-pid PID]
DESCRIPTION
    A raw asyncio server (standard library only) for the pipelining
    tests (integration/delivery_pipelining.sh). Every read from a
    client's socket is one JSON line in the log, its octets exactly
    (latin-1), with the connection number and whether it came over TLS:
        {"conn": 1, "tls": false, "read": "MAIL FROM:<a@b>\\r\\nRCPT ..."}
    so a test can tell that MAIL, the RCPTs and DATA came in one read.
    Each accepted message is a line too:
        {"conn": 1, "message": {"from": ..., "rcpts": [...], "size": N}}

    Replies go out once every complete command line of a read has been
    answered, in one write, as a pipelining server's do. The EHLO reply
    offers PIPELINING (unless --no-pipelining), ENHANCEDSTATUSCODES,
    8BITMIME, SIZE, and STARTTLS with --tls-cert. The sender's local
    part chooses the reply to MAIL FROM:
        refuse451...   451 4.7.1 <text> (greylisted, try again later)
        refuse550...   550 5.7.1 <text> (sender refused)
        multi550...    the same 550, on three lines
        multi...       250 on three lines
        close421...    421 4.3.2 and the connection closed at once
    and anything else 250 2.1.0. After a refused MAIL, RCPT gets
    503 5.5.1 and DATA 503 5.5.1, as Postfix and Exim answer.
"""
import argparse
import asyncio
import json
import os
import socket
import ssl

REFUSALS = {
    "refuse451": ["451 4.7.1 Greylisted by pipesmtp, try again later"],
    "refuse550": ["550 5.7.1 Sender refused by pipesmtp policy"],
    "multi550": ["550-5.7.1 Sender refused by pipesmtp policy,",
                 "550-5.7.1 see the second line",
                 "550 5.7.1 and the third"],
    "multi": ["250-2.1.0 Sender ok,", "250-2.1.0 says pipesmtp",
              "250 2.1.0 on three lines"],
    "close421": ["421 4.3.2 Service shutting down"],
}


class Conn:
    n = 0

    def __init__(self, args, reader, writer):
        Conn.n += 1
        self.id = Conn.n
        self.args = args
        self.r, self.w = reader, writer
        self.tls = False
        self.reset()

    def reset(self):
        self.mail = None
        self.rcpts = []

    def log(self, obj):
        obj = dict(conn=self.id, **obj)
        with open(self.args.log, "a") as f:
            f.write(json.dumps(obj) + "\n")

    def ehlo(self):
        lines = ["250-pipesmtp"]
        if not self.args.no_pipelining:
            lines.append("250-PIPELINING")
        lines += ["250-ENHANCEDSTATUSCODES", "250-8BITMIME"]
        if self.args.tls_cert and not self.tls:
            lines.append("250-STARTTLS")
        lines.append("250 SIZE 10240000")
        return lines

    def command(self, line):
        """Returns (reply lines, action) for one command line."""
        up = line.upper()
        if up.startswith("EHLO"):
            self.reset()
            return self.ehlo(), None
        if up.startswith("HELO"):
            return ["250 pipesmtp"], None
        if up.startswith("STARTTLS") and self.args.tls_cert and not self.tls:
            return ["220 2.0.0 Ready to start TLS"], "tls"
        if up.startswith("MAIL FROM:"):
            addr = line[10:].split(">")[0].lstrip(" <")
            local = addr.split("@")[0]
            for key in sorted(REFUSALS, key=len, reverse=True):
                if local.startswith(key):
                    reply = REFUSALS[key]
                    break
            else:
                reply = ["250 2.1.0 Ok"]
            if reply[-1].startswith("250"):
                self.mail = addr
            if reply[-1].startswith("421"):
                return reply, "close"
            return reply, None
        if up.startswith("RCPT TO:"):
            if self.mail is None:
                return ["503 5.5.1 Error: need MAIL command"], None
            self.rcpts.append(line[8:].split(">")[0].lstrip(" <"))
            return ["250 2.1.5 Ok"], None
        if up.startswith("DATA"):
            if self.mail is None:
                return ["503 5.5.1 Error: need MAIL command"], None
            if not self.rcpts:
                return ["554 5.5.1 Error: no valid recipients"], None
            return ["354 End data with <CR><LF>.<CR><LF>"], "data"
        if up.startswith("RSET"):
            self.reset()
            return ["250 2.0.0 Ok"], None
        if up.startswith("NOOP"):
            return ["250 2.0.0 Ok"], None
        if up.startswith("QUIT"):
            return ["221 2.0.0 Bye"], "close"
        return ["502 5.5.2 Error: command not recognized"], None

    async def run(self):
        self.w.write(b"220 pipesmtp ESMTP\r\n")
        await self.w.drain()
        buf = b""
        content = None
        while True:
            data = await self.r.read(65536)
            if not data:
                return
            self.log({"tls": self.tls, "read": data.decode("latin-1")})
            buf += data
            out = []
            action = None
            while True:
                if content is not None:
                    end = buf.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    content += buf[:end + 2]
                    buf = buf[end + 5:]
                    self.log({"message": {"from": self.mail,
                                          "rcpts": self.rcpts,
                                          "size": len(content)}})
                    out.append("250 2.0.0 Ok: queued")
                    content = None
                    self.reset()
                    continue
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line = buf[:nl + 1].decode("latin-1").rstrip("\r\n")
                buf = buf[nl + 1:]
                reply, action = self.command(line)
                out += reply
                if action == "data":
                    content = b""
                    action = None
                if action in ("tls", "close"):
                    break
            if out:
                self.w.write(("\r\n".join(out) + "\r\n").encode())
                await self.w.drain()
            if action == "close":
                self.w.close()
                return
            if action == "tls":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(self.args.tls_cert, self.args.tls_key)
                await self.w.start_tls(ctx)
                self.tls = True
                self.reset()
                buf = b""


async def serve(args):
    async def handle(reader, writer):
        try:
            await Conn(args, reader, writer).run()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.address, args.port))
    server = await asyncio.start_server(handle, sock=s)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    # Bounded: gone with the test shell, or after ten minutes at most.
    for _ in range(1200):
        if args.watch_pid:
            try:
                os.kill(args.watch_pid, 0)
            except OSError:
                break
        await asyncio.sleep(0.5)
    server.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--no-pipelining", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--watch-pid", type=int)
    asyncio.run(serve(ap.parse_args()))


if __name__ == "__main__":
    main()
