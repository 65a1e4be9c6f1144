#!/usr/bin/python3
# NAME
#	smtpsink.py - a test MX: records every message, plays SMTP faults
# SYNOPSIS
#	python3 tests/servers/smtpsink.py --listen ADDR:PORT[=BEHAVIOURS] ...
#	    [--behaviour [ADDR[:PORT]=]BEHAVIOURS] ... --log FILE
#	    [--ready-file FILE] [--stats-file FILE] [--save-dir DIR]
#	    [--delay-ms N] [--max-line N] [--cert FILE --key FILE]
#	    [--max-lifetime SECONDS] [--watch-pid PID] ...
# DESCRIPTION
#	One process, any number of listeners on 127.0.0.0/8. Every accepted
#	message is one JSON line in the log; faults are chosen per listener
#	(--behaviour) and per recipient/sender local-part prefix. See
#	tests/servers/README for the full interface and the log format.
#
#	Written on asyncio streams and the standard library only, not on
#	aiosmtpd: aiosmtpd 1.4 answers 555 to the DSN parameters (RET, ENVID,
#	NOTIFY, ORCPT), upper-cases parameter values, answers 500 to DATA lines
#	over 1001 octets instead of letting them be recorded, reads all of DATA
#	before any hook runs (so no exact drop in the middle of DATA or stall
#	after the dot) and hard-codes the greeting. Each fault here is exact.
# EXIT STATUS
#	0 after SIGTERM/SIGINT, --max-lifetime or --watch-pid's process
#	ending; 2 usage error; 3 cannot listen, cannot open the log (or
#	transcript, save directory) or cannot make the certificate.

import argparse
import asyncio
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

PROG = "smtpsink"
CRLF = b"\r\n"
MAX_CMD_LINE = 4096          # octets, a command line longer is answered 500
MAX_ERRORS = 20              # protocol errors before 421 and close
READ_CHUNK = 65536

# Enhanced status code sent with a fault reply code.
ENHANCED = {
    421: "4.3.2", 450: "4.2.1", 451: "4.3.0", 452: "4.2.2",
    550: "5.1.1", 551: "5.1.6", 552: "5.2.2", 553: "5.1.3", 554: "5.7.1",
}


def enh(code):
    return ENHANCED.get(code, "%d.0.0" % (code // 100))


def warn(msg):
    try:
        sys.stderr.write("%s[%d]: %s\n" % (PROG, os.getpid(), msg))
        sys.stderr.flush()
    except Exception:
        pass


def now():
    return round(time.time(), 6)


class UsageError(Exception):
    pass


# ---------------------------------------------------------------- behaviours

class Behaviour:
    """What one listener does. Tokens (case-insensitive, comma separated):
    normal refuse greetNNN mailNNN rcptNNN dataNNN dropdata stallgreet
    stallmail stallrcpt stalldata starttls dsn nodsn nopipelining nosize
    no8bitmime delayMS"""

    def __init__(self):
        self.names = []
        self.refuse = False
        self.greet = None
        self.mail = None
        self.rcpt = None
        self.data = None
        self.dropdata = False
        self.stall = set()
        self.starttls = False
        self.dsn = True
        self.pipelining = True
        self.size = True
        self.eightbitmime = True
        self.delay_ms = None

    def add(self, spec):
        for token in spec.split(","):
            t = token.strip().lower()
            if not t:
                continue
            m = re.fullmatch(r"(greet|mail|rcpt|data)([45]\d\d)", t)
            d = re.fullmatch(r"delay(\d+)", t)
            if m:
                setattr(self, m.group(1), int(m.group(2)))
            elif d:
                self.delay_ms = int(d.group(1))
            elif t == "normal":
                pass
            elif t == "refuse":
                self.refuse = True
            elif t == "dropdata":
                self.dropdata = True
            elif t in ("stallgreet", "stallmail", "stallrcpt", "stalldata"):
                self.stall.add(t[5:])
            elif t == "starttls":
                self.starttls = True
            elif t == "dsn":
                self.dsn = True
            elif t == "nodsn":
                self.dsn = False
            elif t == "nopipelining":
                self.pipelining = False
            elif t == "nosize":
                self.size = False
            elif t == "no8bitmime":
                self.eightbitmime = False
            else:
                raise UsageError("unknown behaviour '%s'" % token.strip())
            if t not in self.names:
                self.names.append(t)

    def describe(self):
        return ",".join(self.names) if self.names else "normal"


# Fault prefixes of a recipient's / sender's local part.
RCPT_PREFIX = re.compile(r"^(?:r|rcpt)([45]\d\d)-")
DATA_PREFIX = re.compile(r"^data([45]\d\d)-")
MAIL_PREFIX = re.compile(r"^mail([45]\d\d)-")


def local_part(addr):
    lp = addr.rsplit("@", 1)[0] if "@" in addr else addr
    if lp.startswith('"') and lp.endswith('"') and len(lp) >= 2:
        lp = lp[1:-1]
    return lp.lower()


# ---------------------------------------------------------------- parsing

def parse_hostport(s):
    """'127.0.0.11:2525' or '[::1]:2525' -> (host, port)"""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)", s) or \
        re.fullmatch(r"([0-9.]+):(\d+)", s)
    if not m:
        raise UsageError("bad address '%s' (want ADDR:PORT)" % s)
    host, port = m.group(1), int(m.group(2))
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise UsageError("bad IP address in '%s'" % s)
    if port > 65535:
        raise UsageError("bad port in '%s'" % s)
    return str(ip), port


def hostport_key(host, port):
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def parse_path(arg, verb):
    """'FROM:<a@b> PARAMS' -> (address, raw params) or None.
    Angle brackets are required; a source route is dropped."""
    m = re.match(r"(?i)%s:\s*" % verb, arg)
    if not m:
        return None
    rest = arg[m.end():]
    if not rest.startswith("<"):
        return None
    i, quoted, out = 1, False, []
    while i < len(rest):
        c = rest[i]
        if c == "\\" and quoted and i + 1 < len(rest):
            out.append(rest[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == ">" and not quoted:
            break
        out.append(c)
        i += 1
    else:
        return None
    addr = "".join(out)
    if addr.startswith("@") and ":" in addr:
        addr = addr.split(":", 1)[1]
    params = rest[i + 1:]
    if params and not params[0].isspace():
        return None
    return addr, params.strip()


def parse_params(raw):
    """'SIZE=12 RET=HDRS' -> ordered list of (KEY, value or None)"""
    out = []
    for p in raw.split():
        k, eq, v = p.partition("=")
        out.append((k.upper(), v if eq else None))
    return out


XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*")


def xtext_ok(s):
    return XTEXT.fullmatch(s) is not None


def xtext_decode(s):
    return re.sub(r"\+([0-9A-F]{2})", lambda m: chr(int(m.group(1), 16)), s)


def analyse(content, maxline):
    """Facts about a received message (CRLF line ends, dot-unstuffed)."""
    lines = content.split(CRLF)
    if lines and lines[-1] == b"":
        lines.pop()
    lens = [len(x) for x in lines]
    max_len = max(lens, default=0)
    long_lines = sum(1 for n in lens if n > maxline) if max_len > maxline else 0
    crlf = content.count(CRLF)
    hdr_end = content.find(b"\r\n\r\n")
    block = content if hdr_end < 0 else content[:hdr_end]
    want = {"message-id": None, "x-test-id": None}
    unfolded = []
    for line in block.decode("utf-8", "replace").split("\r\n"):
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += line
        else:
            unfolded.append(line)
    for h in unfolded:
        name, colon, value = h.partition(":")
        key = name.strip().lower()
        if colon and key in want and want[key] is None:
            want[key] = value.strip()
    return {
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "message_id": want["message-id"],
        "x_test_id": want["x-test-id"],
        "lines": len(lines),
        "max_line": max_len,
        "long_lines": long_lines,
        "bare_lf": content.count(b"\n") - crlf,
        "bare_cr": content.count(b"\r") - crlf,
        "eightbit": not content.isascii(),
    }


# ---------------------------------------------------------------- sessions

class ClientGone(Exception):
    pass


class IdleTimeout(Exception):
    pass


class Dropped(Exception):
    pass


class Closed(Exception):
    """the session ends here, end_reason is already set"""


class Listener:
    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.key = hostport_key(host, port)
        self.behaviour = Behaviour()
        self.server = None


class Session:
    def __init__(self, sink, listener, reader, writer, sid):
        self.sink = sink
        self.args = sink.args
        self.listener = listener
        self.b = listener.behaviour
        self.reader = reader
        self.writer = writer
        self.sid = sid
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer_ip, self.peer_port = str(peer[0]), int(peer[1])
        self.start = now()
        self.buf = bytearray()
        self.out = []
        self.helo = None
        self.esmtp = False
        self.tls = False
        self.tls_version = None
        self.tls_cipher = None
        self.txn = 0
        self.messages = 0
        self.rejected = 0
        self.errors = 0
        self.greeting = None
        self.end_reason = None
        self.quit = False
        self.refused_mode = False
        self.pipelining_violations = 0
        self.early_data = 0
        self.stall_bytes = 0
        d = self.b.delay_ms if self.b.delay_ms is not None else self.args.delay_ms
        self.delay = max(0, d) / 1000.0
        self.reset_txn()

    # ------------------------------------------------------------ records

    def reset_txn(self):
        self.mail_from = None     # None: no transaction; "" the null sender
        self.mail_params = ""
        self.mail_kv = {}
        self.rcpts = []
        self.rcpts_rejected = []

    def base(self, typ):
        return {"type": typ, "time": now(), "session": self.sid,
                "listener": self.listener.key, "peer_ip": self.peer_ip,
                "peer_port": self.peer_port}

    def txn_record(self, typ):
        r = self.base(typ)
        kv = self.mail_kv
        envid = kv.get("ENVID")
        size = kv.get("SIZE")
        r.update({
            "helo": self.helo, "esmtp": self.esmtp, "tls": self.tls,
            "txn": self.txn, "mail_from": self.mail_from,
            "mail_params": self.mail_params,
            "size_param": int(size) if size and size.isdigit() else None,
            "body": kv.get("BODY"), "ret": kv.get("RET"), "envid": envid,
            "envid_decoded": xtext_decode(envid) if envid is not None else None,
            "rcpt_tos": [x["addr"] for x in self.rcpts],
            "rcpt_params": [x["params"] for x in self.rcpts],
            "notify": [x["notify"] for x in self.rcpts],
            "orcpt": [x["orcpt"] for x in self.rcpts],
            "rcpts_rejected": self.rcpts_rejected,
        })
        return r

    def log_aborted(self, reason):
        if self.mail_from is not None:
            r = self.txn_record("aborted")
            r["reason"] = reason
            self.sink.log(r)
        self.reset_txn()

    # ------------------------------------------------------------ I/O

    async def flush(self):
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            self.writer.write(data)
            try:
                await asyncio.wait_for(self.writer.drain(), self.args.idle_timeout)
            except asyncio.TimeoutError:
                raise IdleTimeout()

    async def reply(self, text):
        if self.delay:
            await self.flush()
            await asyncio.sleep(self.delay)
        self.out.append(text.encode("utf-8", "replace") + CRLF)
        self.sink.transcript(self, "<", text)

    async def fill(self, most=READ_CHUNK):
        """flush replies, then wait for more input (at most MOST octets)"""
        await self.flush()
        try:
            chunk = await asyncio.wait_for(self.reader.read(most),
                                           self.args.idle_timeout)
        except asyncio.TimeoutError:
            raise IdleTimeout()
        if not chunk:
            raise ClientGone()
        self.buf += chunk

    async def read_command(self):
        """one command line without its line end; None if it was too long"""
        discarding = False
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                if discarding or len(line) > MAX_CMD_LINE:
                    return None
                if line.endswith(b"\r\n"):
                    return line[:-2]
                return line[:-1]
            if len(self.buf) > MAX_CMD_LINE:
                discarding = True
                self.buf.clear()
            await self.fill()

    async def read_data(self, drop_after):
        """DATA content up to the lone dot: (wire bytes or None when over
        the size limit, number of wire bytes). Raises Dropped(octets read)
        once drop_after octets of DATA were read (never more: reads are cut
        short) or at the final dot if the message is shorter."""
        limit = self.args.size_limit
        self.buf[0:0] = CRLF              # so a leading ".\r\n" matches too
        start, scan, discarded = 2, 0, 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", scan)
            got = discarded + len(self.buf) - start
            if drop_after is not None:
                if i >= 0 and i + 2 - start < drop_after:
                    raise Dropped(i + 2 - start)
                if got >= drop_after:
                    raise Dropped(drop_after)
                scan = max(0, len(self.buf) - 4)
                await self.fill(drop_after - got)
                continue
            if i >= 0:
                data = bytes(self.buf[start:i + 2]) if not discarded else None
                total = discarded + max(0, i + 2 - start)
                del self.buf[:i + 5]
                return data, total
            if limit and len(self.buf) - start > limit + 8:
                keep = self.buf[-4:]
                discarded += len(self.buf) - start - 4
                self.buf = bytearray(keep)
                start = 0
            scan = max(0, len(self.buf) - 4)
            await self.fill()

    async def stall(self, what):
        """answer nothing more; hold the connection until the client
        closes it or --stall-seconds pass"""
        await self.flush()
        self.end_reason = what
        self.sink.transcript(self, "-", "stalling (%s)" % what)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.args.stall_seconds
        while True:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                chunk = await asyncio.wait_for(self.reader.read(READ_CHUNK), left)
            except asyncio.TimeoutError:
                break
            if not chunk:
                break
            self.stall_bytes += len(chunk)
        raise Closed()

    # ------------------------------------------------------------ session

    async def run(self):
        self.sink.session_started(self)
        self.sink.log(self.base("connect"))
        try:
            await self.converse()
        except Closed:
            pass
        except ClientGone:
            self.end_reason = self.end_reason or "client-closed"
        except IdleTimeout:
            self.end_reason = "timeout"
            try:
                self.out.clear()
                self.writer.write(b"421 4.4.2 smtpsink: timeout, closing\r\n")
            except Exception:
                pass
        except Dropped as e:
            self.end_reason = "dropdata"
            self.sink.transcript(self, "-", "dropping connection after %d octets of DATA" % e.args[0])
            r = self.txn_record("dropped")
            r["bytes"] = e.args[0]
            self.sink.log(r)
            self.reset_txn()
            try:
                self.writer.transport.abort()
            except Exception:
                pass
        except (ConnectionError, BrokenPipeError, EOFError):
            self.end_reason = self.end_reason or "client-reset"
        except ssl.SSLError as e:
            self.end_reason = "tls-error"
            warn("session %d from %s: TLS: %s" % (self.sid, self.peer_ip, e))
        except OSError as e:
            self.end_reason = self.end_reason or "io-error"
            warn("session %d from %s: %s" % (self.sid, self.peer_ip, e))
        except asyncio.CancelledError:
            self.end_reason = self.end_reason or "shutdown"
        except Exception as e:
            self.end_reason = "server-error"
            warn("session %d from %s on %s: unexpected exception:\n%s" % (
                self.sid, self.peer_ip, self.listener.key, traceback.format_exc()))
            r = self.base("error")
            r["error"] = "%s: %s" % (type(e).__name__, e)
            self.sink.log(r)
            try:
                self.out.clear()
                self.writer.write(b"451 4.3.0 smtpsink: internal error\r\n")
            except Exception:
                pass
        finally:
            self.finish()

    def finish(self):
        try:
            self.log_aborted(self.end_reason or "closed")
        except Exception:
            warn("session %d: %s" % (self.sid, traceback.format_exc()))
        try:
            if self.end_reason in ("shutdown",):
                self.writer.transport.abort()
            else:
                self.writer.close()
        except Exception:
            pass
        r = self.base("session")
        r.update({
            "start": self.start, "end": r["time"], "helo": self.helo,
            "esmtp": self.esmtp, "tls": self.tls, "tls_version": self.tls_version,
            "tls_cipher": self.tls_cipher, "greeting": self.greeting,
            "messages": self.messages, "transactions": self.txn,
            "rejected": self.rejected, "errors": self.errors,
            "quit": self.quit, "end_reason": self.end_reason,
            "pipelining_violations": self.pipelining_violations,
            "early_data": self.early_data, "stall_bytes": self.stall_bytes,
            "behaviour": self.b.describe(),
        })
        self.sink.log(r)
        self.sink.session_ended(self)

    async def converse(self):
        host = self.args.hostname
        b = self.b
        if "greet" in b.stall:
            await self.stall("stallgreet")
        peer_greeting = self.args.peer_greetings.get(self.peer_ip)
        if peer_greeting:
            # A provider's reply to one client address (a block or a
            # "slow down" aimed at a source IP), then close.
            code = int(peer_greeting[:3])
            self.greeting = code
            await self.reply(peer_greeting)
            await self.flush()
            self.end_reason = "greet%d" % code
            raise Closed()
        if b.greet:
            code = b.greet
            self.greeting = code
            if code == 554:
                text = "no SMTP service here"
            else:
                text = "service not available"
            await self.reply("%d %s %s smtpsink greet%d: %s" % (code, enh(code), host, code, text))
            if code // 100 == 4:
                await self.flush()
                self.end_reason = "greet%d" % code
                raise Closed()
            self.refused_mode = True     # RFC 5321 3.1: wait for QUIT
        else:
            self.greeting = 220
            await self.reply("220 %s ESMTP smtpsink" % host)
        while True:
            line = await self.read_command()
            if line is None:
                await self.error("500 5.5.2 Error: command line too long", "", True)
                continue
            if self.buf and not (self.esmtp and b.pipelining):
                self.pipelining_violations += 1
            text = line.decode("utf-8", "replace")
            self.sink.transcript(self, ">", text)
            verb, _, arg = text.strip().partition(" ")
            verb = verb.upper()
            arg = arg.strip()
            if self.refused_mode:
                if verb == "QUIT":
                    await self.cmd_quit(arg)
                else:
                    await self.error("503 5.5.1 Error: no SMTP service here", text, True)
                continue
            handler = getattr(self, "cmd_" + verb.lower(), None) \
                if verb.isalpha() and verb.isascii() else None
            if handler is None:
                if verb in ("BDAT", "AUTH", "ETRN", "EXPN", "TURN", "ATRN"):
                    await self.error("502 5.5.1 Error: command not implemented", text, True)
                elif not verb:
                    await self.error("500 5.5.2 Error: bad syntax", text, True)
                else:
                    await self.error("500 5.5.2 Error: command not recognized", text, True)
                continue
            await handler(arg)

    async def error(self, reply, command, bogus=False):
        """a protocol error of the client (not a configured fault). Only
        bogus commands (unknown, not implemented, empty, overlong, or any
        after a 554 greeting) count towards MAX_ERRORS, so sequence and
        parameter errors are answered exactly however many there are."""
        r = self.base("error")
        r.update({"command": command[:200], "reply": reply})
        self.sink.log(r)
        await self.reply(reply)
        if not bogus:
            return
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            await self.reply("421 4.7.0 smtpsink: too many errors")
            await self.flush()
            self.end_reason = "too-many-errors"
            raise Closed()

    def ext(self, name):
        """is the ESMTP extension advertised in this session?"""
        if not self.esmtp:
            return False
        return {"PIPELINING": self.b.pipelining, "SIZE": self.b.size,
                "8BITMIME": self.b.eightbitmime, "DSN": self.b.dsn,
                "STARTTLS": self.b.starttls and not self.tls}[name]

    # ------------------------------------------------------------ commands

    async def cmd_helo(self, arg, esmtp=False):
        if not arg:
            return await self.error("501 5.5.4 Syntax: %s hostname" %
                                    ("EHLO" if esmtp else "HELO"), "")
        self.log_aborted("helo")
        self.helo = arg
        self.esmtp = esmtp
        if not esmtp:
            return await self.reply("250 %s" % self.args.hostname)
        lines = [self.args.hostname]
        if self.ext("PIPELINING"):
            lines.append("PIPELINING")
        if self.ext("SIZE"):
            lines.append("SIZE %d" % self.args.size_limit)
        if self.ext("8BITMIME"):
            lines.append("8BITMIME")
        lines.append("ENHANCEDSTATUSCODES")
        if self.ext("DSN"):
            lines.append("DSN")
        if self.ext("STARTTLS"):
            lines.append("STARTTLS")
        for i, l in enumerate(lines):
            await self.reply("250%s%s" % (" " if i == len(lines) - 1 else "-", l))

    async def cmd_ehlo(self, arg):
        await self.cmd_helo(arg, esmtp=True)

    async def cmd_noop(self, arg):
        await self.reply("250 2.0.0 Ok")

    async def cmd_rset(self, arg):
        self.log_aborted("rset")
        await self.reply("250 2.0.0 Ok")

    async def cmd_vrfy(self, arg):
        await self.reply("252 2.0.0 Cannot VRFY, but will accept the message")

    async def cmd_help(self, arg):
        await self.reply("214 2.0.0 smtpsink: see tests/servers/README")

    async def cmd_quit(self, arg):
        self.quit = True
        self.log_aborted("quit")
        await self.reply("221 2.0.0 Bye")
        await self.flush()
        self.end_reason = "quit"
        raise Closed()

    async def cmd_starttls(self, arg):
        if arg:
            return await self.error("501 5.5.4 Syntax: STARTTLS", "STARTTLS " + arg)
        if not self.ext("STARTTLS"):
            return await self.error("502 5.5.1 Error: STARTTLS not offered", "STARTTLS")
        # Stop reading before the 220 goes out: the client's TLS hello
        # follows it at once, and bytes the plain stream reads before
        # start_tls() takes over are lost to the handshake (which then
        # stalls until the client gives up).
        self.writer.transport.pause_reading()
        await self.reply("220 2.0.0 Ready to start TLS")
        await self.flush()
        if self.buf:                      # plaintext sent ahead: discard it
            self.pipelining_violations += 1
            self.buf.clear()
        try:
            await asyncio.wait_for(
                self.writer.start_tls(self.sink.tls_context),
                self.args.idle_timeout)
        except asyncio.TimeoutError:
            raise IdleTimeout()
        self.tls = True
        sslobj = self.writer.get_extra_info("ssl_object")
        if sslobj is not None:
            self.tls_version = sslobj.version()
            c = sslobj.cipher()
            self.tls_cipher = c[0] if c else None
        self.log_aborted("starttls")
        self.helo = None
        self.esmtp = False
        self.sink.transcript(self, "-", "TLS started: %s %s" % (self.tls_version, self.tls_cipher))

    async def cmd_mail(self, arg):
        if self.helo is None:
            return await self.error("503 5.5.1 Error: send HELO/EHLO first", "MAIL " + arg)
        if self.mail_from is not None:
            return await self.error("503 5.5.1 Error: nested MAIL command", "MAIL " + arg)
        p = parse_path(arg, "FROM")
        if p is None:
            return await self.error("501 5.5.4 Syntax: MAIL FROM:<address>", "MAIL " + arg)
        addr, raw = p
        kv = {}
        for k, v in parse_params(raw):
            bad = None
            if k in kv:
                bad = "501 5.5.4 Error: duplicate %s parameter" % k
            elif k == "SIZE":
                if not self.ext("SIZE"):
                    bad = "555 5.5.4 Unsupported option: %s" % k
                elif v is None or not v.isdigit():
                    bad = "501 5.5.4 Bad SIZE parameter"
                elif int(v) > self.args.size_limit:
                    bad = "552 5.3.4 Message size exceeds fixed limit"
            elif k == "BODY":
                vu = (v or "").upper()
                if vu not in ("7BIT", "8BITMIME"):
                    bad = "501 5.5.4 Bad BODY parameter"
                elif vu == "8BITMIME" and not self.ext("8BITMIME"):
                    bad = "555 5.5.4 Unsupported option: BODY=8BITMIME"
            elif k == "RET":
                if not self.ext("DSN"):
                    bad = "555 5.5.4 Unsupported option: RET"
                elif (v or "").upper() not in ("FULL", "HDRS"):
                    bad = "501 5.5.4 Bad RET parameter"
            elif k == "ENVID":
                if not self.ext("DSN"):
                    bad = "555 5.5.4 Unsupported option: ENVID"
                elif not v or not xtext_ok(v) or len(v) > 100:
                    bad = "501 5.5.4 Bad ENVID parameter"
            else:
                bad = "555 5.5.4 Unsupported option: %s" % k
            if bad:
                return await self.error(bad, "MAIL " + arg)
            kv[k] = v
        code = None
        m = MAIL_PREFIX.match(local_part(addr))
        if m:
            code = int(m.group(1))
        elif self.b.mail:
            code = self.b.mail
        stall = "mail" in self.b.stall or local_part(addr).startswith("stallmail-")
        if code or stall:
            self.mail_from, self.mail_params, self.mail_kv = addr, raw, kv
            r = self.txn_record("mail_rejected")
            self.reset_txn()
            if stall:
                r["reply"] = None
                self.sink.log(r)
                await self.stall("stallmail")
            reply = "%d %s <%s>: smtpsink mail%d: sender rejected" % (code, enh(code), addr, code)
            r["reply"] = reply
            self.sink.log(r)
            self.rejected += 1
            return await self.reply(reply)
        self.txn += 1
        self.mail_from, self.mail_params, self.mail_kv = addr, raw, kv
        await self.reply("250 2.1.0 Ok")

    async def cmd_rcpt(self, arg):
        if self.mail_from is None:
            return await self.error("503 5.5.1 Error: need MAIL command", "RCPT " + arg)
        p = parse_path(arg, "TO")
        if p is None or not p[0]:
            return await self.error("501 5.5.4 Syntax: RCPT TO:<address>", "RCPT " + arg)
        addr, raw = p
        kv = {}
        for k, v in parse_params(raw):
            bad = None
            if k in kv:
                bad = "501 5.5.4 Error: duplicate %s parameter" % k
            elif k == "NOTIFY":
                if not self.ext("DSN"):
                    bad = "555 5.5.4 Unsupported option: NOTIFY"
                else:
                    words = (v or "").upper().split(",")
                    if not (words == ["NEVER"] or (
                            words and len(set(words)) == len(words) and
                            set(words) <= {"SUCCESS", "FAILURE", "DELAY"})):
                        bad = "501 5.5.4 Bad NOTIFY parameter"
            elif k == "ORCPT":
                if not self.ext("DSN"):
                    bad = "555 5.5.4 Unsupported option: ORCPT"
                else:
                    t, semi, x = (v or "").partition(";")
                    if not semi or not t or not x or not xtext_ok(x) or len(v) > 500:
                        bad = "501 5.5.4 Bad ORCPT parameter"
            else:
                bad = "555 5.5.4 Unsupported option: %s" % k
            if bad:
                return await self.error(bad, "RCPT " + arg)
            kv[k] = v
        if len(self.rcpts) >= self.args.max_rcpts:
            return await self.reply("452 4.5.3 Error: too many recipients")
        lp = local_part(addr)
        if "rcpt" in self.b.stall or lp.startswith("stallrcpt-"):
            self.rcpts_rejected.append({"rcpt": addr, "params": raw, "reply": None})
            r = self.txn_record("stalled")
            r["stage"] = "rcpt"
            self.sink.log(r)
            self.reset_txn()
            await self.stall("stallrcpt")
        given = self.sink.rcpt_replies.get(lp)
        if given:
            self.rcpts_rejected.append({"rcpt": addr, "params": raw, "reply": given})
            return await self.reply(given)
        m = RCPT_PREFIX.match(lp)
        code = int(m.group(1)) if m else self.b.rcpt
        if code:
            reply = "%d %s <%s>: smtpsink rcpt%d: recipient rejected" % (code, enh(code), addr, code)
            self.rcpts_rejected.append({"rcpt": addr, "params": raw, "reply": reply})
            return await self.reply(reply)
        orcpt = kv.get("ORCPT")
        self.rcpts.append({
            "addr": addr, "params": raw, "notify": kv.get("NOTIFY"),
            "orcpt": orcpt, "lp": lp,
        })
        await self.reply("250 2.1.5 Ok")

    async def cmd_data(self, arg):
        if self.mail_from is None:
            return await self.error("503 5.5.1 Error: need MAIL command", "DATA")
        if not self.rcpts:
            return await self.error("554 5.5.1 Error: no valid recipients", "DATA")
        if arg:
            return await self.error("501 5.5.4 Syntax: DATA", "DATA " + arg)
        if self.buf:
            self.early_data += 1
        lps = [x["lp"] for x in self.rcpts]
        drop = self.b.dropdata or any(lp.startswith("dropdata-") for lp in lps)
        await self.reply("354 End data with <CR><LF>.<CR><LF>")
        await self.flush()
        wire, total = await self.read_data(self.args.dropdata_bytes if drop else None)
        self.sink.transcript(self, ">", "(%d octets of DATA and the final dot)" % total)
        if "data" in self.b.stall or any(lp.startswith("stalldata-") for lp in lps):
            r = self.txn_record("stalled")
            r["stage"] = "data"
            r["bytes"] = total
            self.sink.log(r)
            self.reset_txn()
            await self.stall("stalldata")
        code = None
        for lp in lps:
            m = DATA_PREFIX.match(lp)
            if m:
                code = int(m.group(1))
                break
        else:
            code = self.b.data
        if wire is None:
            reply = "552 5.3.4 Error: message too big"
        elif code:
            reply = "%d %s smtpsink data%d: message rejected" % (code, enh(code), code)
        else:
            reply = None
        if reply:
            r = self.txn_record("rejected")
            r["reply"] = reply
            r["bytes"] = total
            if wire is not None:
                r.update(analyse(self.unstuff(wire), self.args.max_line))
            self.sink.log(r)
            self.rejected += 1
            self.reset_txn()
            return await self.reply(reply)
        content = self.unstuff(wire)
        self.messages += 1
        qid = "S%dT%d" % (self.sid, self.txn)
        r = self.txn_record("message")
        r["msg"] = self.messages
        r["queue_id"] = qid
        r.update(analyse(content, self.args.max_line))
        if self.args.save_dir:
            path = os.path.join(self.args.save_dir, "%s.eml" % qid)
            with open(path, "wb") as f:
                f.write(content)
            r["file"] = path
        self.sink.log(r)
        self.sink.message_accepted(self)
        self.reset_txn()
        await self.reply("250 2.0.0 Ok: queued as %s" % qid)

    @staticmethod
    def unstuff(wire):
        if wire.startswith(b"."):
            wire = wire[1:]
        return wire.replace(b"\r\n.", b"\r\n")


# ---------------------------------------------------------------- the sink

class Sink:
    def __init__(self, args, listeners):
        self.args = args
        # --rcpt-replies: a reply of our choosing for a recipient, as one
        # line ("550-5.1.1 x" is sent as "550 5.1.1 x").
        self.rcpt_replies = {}
        if args.rcpt_replies:
            with open(args.rcpt_replies, encoding="utf-8") as f:
                for line in f:
                    lp, tab, reply = line.rstrip("\n").partition("\t")
                    if tab and re.match(r"^[45]\d\d[ -]", reply):
                        self.rcpt_replies[lp.lower()] = reply[:3] + " " + reply[4:]
        self.listeners = listeners
        self.log_fd = None
        self.transcript_fd = None
        self.tls_context = None
        self.tempdir = None
        self.next_sid = 1
        self.sessions = {}
        self.stop_reason = None
        self.stopped = None
        self.stats_handle = None
        self.reset_stats()

    # ------------------------------------------------------------ stats

    def reset_stats(self):
        self.sessions_total = 0
        self.messages_total = 0
        self.active = 0
        self.max_active = 0
        self.active_peer, self.max_peer = {}, {}
        self.active_listener, self.max_listener = {}, {}
        self.active_pl, self.max_pl = {}, {}
        self.sessions_peer, self.sessions_listener = {}, {}
        self.messages_peer, self.messages_listener = {}, {}

    def reset_maxima(self):
        self.max_active = self.active
        self.max_peer = {k: v for k, v in self.active_peer.items() if v}
        self.max_listener = {k: v for k, v in self.active_listener.items() if v}
        self.max_pl = {k: v for k, v in self.active_pl.items() if v}

    @staticmethod
    def _bump(active, maxima, key, delta):
        n = active.get(key, 0) + delta
        active[key] = n
        if n > maxima.get(key, 0):
            maxima[key] = n

    def session_started(self, s):
        pl = "%s>%s" % (s.peer_ip, s.listener.key)
        self.sessions_total += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self._bump(self.active_peer, self.max_peer, s.peer_ip, 1)
        self._bump(self.active_listener, self.max_listener, s.listener.key, 1)
        self._bump(self.active_pl, self.max_pl, pl, 1)
        for d, k in ((self.sessions_peer, s.peer_ip),
                     (self.sessions_listener, s.listener.key)):
            d[k] = d.get(k, 0) + 1
        self.write_stats()

    def session_ended(self, s):
        pl = "%s>%s" % (s.peer_ip, s.listener.key)
        self.active -= 1
        self._bump(self.active_peer, self.max_peer, s.peer_ip, -1)
        self._bump(self.active_listener, self.max_listener, s.listener.key, -1)
        self._bump(self.active_pl, self.max_pl, pl, -1)
        self.write_stats()

    def message_accepted(self, s):
        self.messages_total += 1
        for d, k in ((self.messages_peer, s.peer_ip),
                     (self.messages_listener, s.listener.key)):
            d[k] = d.get(k, 0) + 1
        if self.stats_handle is None and self.args.stats_file:
            self.stats_handle = asyncio.get_running_loop().call_later(
                0.2, self.write_stats)

    def write_stats(self, final=False):
        if self.stats_handle is not None:
            self.stats_handle.cancel()
            self.stats_handle = None
        path = self.args.stats_file
        if not path:
            return
        st = {
            "pid": os.getpid(), "updated": now(), "final": final,
            "stop_reason": self.stop_reason,
            "sessions_total": self.sessions_total,
            "sessions_active": self.active, "max_active": self.max_active,
            "messages_total": self.messages_total,
            "max_active_per_peer": self.max_peer,
            "max_active_per_listener": self.max_listener,
            "max_active_per_peer_listener": self.max_pl,
            "active_per_peer": {k: v for k, v in self.active_peer.items() if v},
            "active_per_listener": {k: v for k, v in self.active_listener.items() if v},
            "sessions_per_peer": self.sessions_peer,
            "sessions_per_listener": self.sessions_listener,
            "messages_per_peer": self.messages_peer,
            "messages_per_listener": self.messages_listener,
        }
        try:
            tmp = "%s.tmp.%d" % (path, os.getpid())
            with open(tmp, "w") as f:
                json.dump(st, f, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except OSError as e:
            warn("cannot write %s: %s" % (path, e))

    # ------------------------------------------------------------ logs

    def log(self, rec):
        if self.log_fd is None:
            return
        line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
        try:
            os.write(self.log_fd, line)
        except OSError as e:
            warn("cannot write the log: %s" % e)

    def transcript(self, s, direction, text):
        if self.transcript_fd is None:
            return
        line = "%.6f %d %s %s %s\n" % (time.time(), s.sid, s.peer_ip, direction, text)
        try:
            os.write(self.transcript_fd, line.encode("utf-8", "replace"))
        except OSError:
            pass

    # ------------------------------------------------------------ running

    def make_tls(self):
        a = self.args
        if not a.cert:
            self.tempdir = tempfile.mkdtemp(prefix="smtpsink-")
            a.cert = os.path.join(self.tempdir, "cert.pem")
            a.key = os.path.join(self.tempdir, "key.pem")
            cmd = ["openssl", "req", "-x509", "-newkey", "ec",
                   "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                   "-keyout", a.key, "-out", a.cert, "-days", "30",
                   "-subj", "/CN=%s" % a.hostname,
                   "-addext", "subjectAltName=DNS:%s" % a.hostname]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=60)
            if p.returncode != 0:
                raise OSError("openssl req failed: %s" % p.stdout.decode(errors="replace"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        self.tls_context = ctx

    async def handle(self, listener, reader, writer):
        sid = self.next_sid
        self.next_sid += 1
        try:
            s = Session(self, listener, reader, writer, sid)
        except Exception:
            warn("cannot start a session: %s" % traceback.format_exc())
            writer.close()
            return
        self.sessions[sid] = (s, asyncio.current_task())
        try:
            await s.run()
        except BaseException:
            warn("session %d: %s" % (sid, traceback.format_exc()))
        finally:
            self.sessions.pop(sid, None)

    def request_stop(self, reason):
        if self.stop_reason is None:
            self.stop_reason = reason
            warn("stopping (%s)" % reason)
            self.stopped.set()

    def usr1(self):
        self.reset_maxima()
        self.log({"type": "mark", "time": now(), "what": "maxima reset (SIGUSR1)"})
        self.write_stats()

    async def watch_pid(self, pid):
        while True:
            await asyncio.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                self.request_stop("watched process %d is gone" % pid)
                return
            except PermissionError:
                pass

    async def main(self):
        a = self.args
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        for sig, why in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
            loop.add_signal_handler(sig, self.request_stop, why)
        loop.add_signal_handler(signal.SIGUSR1, self.usr1)
        try:
            if a.log:
                self.log_fd = os.open(a.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if a.transcript:
                self.transcript_fd = os.open(a.transcript, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if a.save_dir:
                os.makedirs(a.save_dir, exist_ok=True)
        except OSError as e:
            warn("cannot open: %s" % e)
            return 3
        try:
            if a.cert or any(l.behaviour.starttls for l in self.listeners):
                self.make_tls()
        except (OSError, ssl.SSLError, subprocess.SubprocessError) as e:
            warn("cannot set up TLS: %s" % e)
            return 3
        for l in self.listeners:
            if l.behaviour.refuse:
                continue
            try:
                l.server = await asyncio.start_server(
                    lambda r, w, l=l: self.handle(l, r, w),
                    l.host, l.port, reuse_address=True, backlog=1024)
            except OSError as e:
                warn("cannot listen on %s: %s" % (l.key, e))
                return 3
            if l.port == 0:
                l.port = l.server.sockets[0].getsockname()[1]
                l.key = hostport_key(l.host, l.port)
        self.write_stats()
        lines = ["pid=%d" % os.getpid()]
        for l in self.listeners:
            if l.behaviour.refuse:
                lines.append("refused=%s" % l.key)
            else:
                lines.append("listen=%s %s" % (l.key, l.behaviour.describe()))
        if self.tls_context:
            lines.append("cert=%s" % a.cert)
        warn("ready: %s" % "; ".join(lines[1:]))
        if a.ready_file:
            tmp = "%s.tmp.%d" % (a.ready_file, os.getpid())
            with open(tmp, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, a.ready_file)
        loop.call_later(a.max_lifetime, self.request_stop, "max-lifetime %gs" % a.max_lifetime)
        watcher = loop.create_task(self.watch_pid(a.watch_pid)) if a.watch_pid else None
        await self.stopped.wait()
        if watcher:
            watcher.cancel()
        for l in self.listeners:
            if l.server:
                l.server.close()
        tasks = []
        for s, task in list(self.sessions.values()):
            s.end_reason = s.end_reason or "shutdown"
            task.cancel()
            tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self.write_stats(final=True)
        return 0

    def cleanup(self):
        for fd in (self.log_fd, self.transcript_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.tempdir:
            shutil.rmtree(self.tempdir, ignore_errors=True)


# ---------------------------------------------------------------- main

def build(argv):
    ap = argparse.ArgumentParser(
        prog="smtpsink.py",
        description="Test MX server: records messages as JSON lines, plays SMTP faults. "
                    "See tests/servers/README.")
    ap.add_argument("--listen", action="append", default=[], metavar="ADDR:PORT[=BEHAVIOURS]",
                    help="listen here (repeatable; port 0 picks a free port)")
    ap.add_argument("--behaviour", "--behavior", action="append", default=[],
                    metavar="[ADDR[:PORT]=]BEHAVIOURS",
                    help="faults for one listener, for every listener on ADDR, or (no '=') for all")
    ap.add_argument("--log", metavar="FILE", help="JSON-lines log (appended)")
    ap.add_argument("--ready-file", metavar="FILE", help="written once every listener listens")
    ap.add_argument("--stats-file", metavar="FILE", help="concurrency/counter JSON, rewritten on change")
    ap.add_argument("--save-dir", metavar="DIR", help="store each accepted message as DIR/QUEUEID.eml")
    ap.add_argument("--transcript", metavar="FILE", help="append every command and reply (debugging)")
    ap.add_argument("--delay-ms", type=int, default=0, metavar="N",
                    help="wait N ms before every reply (default 0)")
    ap.add_argument("--max-line", type=int, default=998, metavar="N",
                    help="count DATA lines longer than N octets without CRLF as long_lines (default 998)")
    ap.add_argument("--dropdata-bytes", type=int, default=100, metavar="N",
                    help="dropdata closes after N octets of DATA (default 100)")
    ap.add_argument("--stall-seconds", type=float, default=600, metavar="S",
                    help="a stalled session is closed after S seconds (default 600)")
    ap.add_argument("--idle-timeout", type=float, default=300, metavar="S",
                    help="421 and close after S seconds without a command (default 300)")
    ap.add_argument("--size-limit", type=int, default=52428800, metavar="N",
                    help="SIZE advertised and enforced (default 52428800)")
    ap.add_argument("--max-rcpts", type=int, default=1000, metavar="N",
                    help="452 to RCPTs beyond N in one transaction (default 1000)")
    ap.add_argument("--hostname", default="smtpsink.test", help="name in the greeting, EHLO and certificate")
    ap.add_argument("--cert", metavar="FILE", help="TLS certificate (PEM); default: generated with openssl")
    ap.add_argument("--key", metavar="FILE", help="TLS private key (PEM)")
    ap.add_argument("--max-lifetime", type=float, default=900, metavar="S",
                    help="exit by itself after S seconds (default 900)")
    ap.add_argument("--rcpt-replies", metavar="FILE",
                    help="LOCALPART<TAB>REPLY lines: that recipient's RCPT TO gets REPLY")
    ap.add_argument("--watch-pid", type=int, metavar="PID", help="exit when process PID is gone")
    ap.add_argument("--peer-greeting", action="append", default=[], metavar="CLIENT_IP=REPLY",
                    help="greet sessions from CLIENT_IP with REPLY (a 4xx or 5xx line), then close")
    ap.add_argument("--allow-non-loopback", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.peer_greetings = {}
    for spec in a.peer_greeting:
        ip, eq, text = spec.partition("=")
        if not eq or not re.match(r"[45]\d\d ", text):
            raise UsageError("--peer-greeting %s: expected CLIENT_IP=4xx/5xx reply" % spec)
        a.peer_greetings[ip] = text

    if not a.listen:
        raise UsageError("at least one --listen ADDR:PORT is required")
    if bool(a.cert) != bool(a.key):
        raise UsageError("--cert and --key go together")
    if a.max_lifetime <= 0 or a.stall_seconds < 0 or a.idle_timeout <= 0:
        raise UsageError("--max-lifetime and --idle-timeout must be positive")
    listeners = []
    specific = []
    for spec in a.listen:
        addr, eq, beh = spec.partition("=")
        host, port = parse_hostport(addr)
        if not a.allow_non_loopback and not ipaddress.ip_address(host).is_loopback:
            raise UsageError("%s is not a loopback address" % addr)
        l = Listener(host, port)
        if any(x.key == l.key for x in listeners):
            raise UsageError("%s is given twice" % l.key)
        listeners.append(l)
        if eq:
            specific.append((l, beh))
    for spec in a.behaviour:
        target, eq, beh = spec.partition("=")
        if not eq:
            for l in listeners:
                l.behaviour.add(spec)
            continue
        if re.fullmatch(r"[0-9.]+|\[[0-9A-Fa-f:.]+\]", target):
            host = str(ipaddress.ip_address(target.strip("[]")))
            hit = [l for l in listeners if l.host == host]
        else:
            host, port = parse_hostport(target)
            hit = [l for l in listeners if l.host == host and l.port == port]
        if not hit:
            raise UsageError("--behaviour %s names no --listen address" % spec)
        specific.extend((l, beh) for l in hit)
    for l, beh in specific:
        l.behaviour.add(beh)
    for l in listeners:
        if l.port == 0 and l.behaviour.refuse:
            raise UsageError("%s: refuse needs a fixed port" % l.key)
    return a, listeners


def main(argv):
    try:
        args, listeners = build(argv)
    except UsageError as e:
        warn("usage: %s" % e)
        return 2
    except ValueError as e:
        warn("usage: %s" % e)
        return 2
    sink = Sink(args, listeners)
    try:
        return asyncio.run(sink.main())
    except KeyboardInterrupt:
        return 0
    finally:
        sink.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
