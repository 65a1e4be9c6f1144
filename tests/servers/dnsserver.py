#!/usr/bin/python3
"""
NAME
    dnsserver.py - a small authoritative DNS server for mxlane's tests

SYNOPSIS
    dnsserver.py --zone FILE [--address 127.0.0.X] [--port PORT]
                 [--port-file FILE] [--log FILE] [--watch-pid PID]

DESCRIPTION
    Answers queries over UDP and TCP on one loopback address and port
    from a zone file, so that tests exercise mxlane's real resolver code
    (MX ordering, null MX, NXDOMAIN, SERVFAIL, time-outs, truncation)
    without ever reaching a real DNS server.

    --address must lie in 127.0.0.0/8 (default 127.0.0.1): the tests may
    not touch any other network. --port 0 (the default) picks a port that
    is free for both UDP and TCP. The port is printed on standard output
    and, with --port-file, written to FILE (atomically, by rename, so a
    waiting test never reads half a number). UDP answers longer than 512
    octets are truncated to header and question with TC set, as RFC 1035
    requires when the query carries no EDNS0, so clients must retry over
    TCP.

    The zone file is read again whenever it changes (inode, size or
    modification time), so a test can change DNS between two runs of a
    program; replace it by rename, so that no query sees half a file. A
    zone that fails to parse at start-up is fatal (exit 2); a bad reload
    keeps the previous zone and complains on standard error.

    SIGTERM or SIGINT stops the server cleanly with exit status 0; so
    does, with --watch-pid, the end of process PID (checked every
    second), so that a test killed before it could stop the server does
    not leave it running.

ZONE FILE
    One record per line; "#" starts a comment; blank lines are ignored.
    Names are case-insensitive and a trailing dot is optional. Every
    answer has TTL 60 and the AA bit.

        NAME A      IPV4                example.test A 127.0.0.11
        NAME AAAA   IPV6                v6.test AAAA ::1
        NAME MX     PREF EXCHANGE       example.test MX 10 mx1.example.test
        NAME CNAME  TARGET [nochase]    alias.test CNAME real.test
        NAME TXT    TEXT...             t.test TXT hello world
                                        (TEXT longer than 255 octets goes
                                        out as several strings, as a DKIM
                                        key record is published)
        NAME SERVFAIL [TYPE]            broken.test SERVFAIL
        NAME REFUSED  [TYPE]            refused.test REFUSED
        NAME TIMEOUT  [TYPE]            slow.test TIMEOUT

    "nullmx.test MX 0 ." is an RFC 7505 null MX. A CNAME is followed
    inside the zone (up to 8 links) and the target's records are added to
    the answer, as a recursive resolver would; with "nochase" the answer
    holds only the CNAME, as from an authoritative server that does not
    hold the target. SERVFAIL, REFUSED and TIMEOUT apply to every query
    for NAME, or only to queries of TYPE when it is given; TIMEOUT never
    answers (over TCP the connection is held open until the client gives
    up). A NAME of the form "*.domain" is a wildcard for names below
    domain that do not otherwise exist.

    A name not in the zone gets NXDOMAIN; a name that exists (with other
    types, or as the parent of another name) gets NODATA: NOERROR and an
    empty answer.

LOG
    With --log FILE every query appends one line
        PROTO QNAME QTYPE RESULT
    e.g. "udp many.test. A TRUNCATED", "tcp many.test. A NOERROR",
    "udp slow.test. MX TIMEOUT", so tests can check which queries a
    program made and over which transport.
"""

import argparse
import ipaddress
import os
import signal
import socket
import sys
import threading
import time

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSError, \
    DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer

TTL = 60
MAX_CHAIN = 8
UDP_MAX = 512
HOLD_SECONDS = 60

stopping = threading.Event()


class ZoneError(Exception):
    pass


class NoAnswer(DNSError):
    """Raised to make dnslib's handler send nothing at all."""


def norm(name):
    """Zone keys: lower case, no trailing dot; the root is ""."""
    return str(name).lower().rstrip(".")


class Zone:
    def __init__(self, path):
        self.records = {}       # name -> [(qtype, rdata)]
        self.cnames = {}        # name -> (target, chase)
        self.actions = {}       # name -> {qtype or None: action}
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    self.parse_line(line)
                except (ValueError, IndexError, DNSError) as e:
                    raise ZoneError("%s:%d: %s" % (path, lineno, e))

    def parse_line(self, line):
        words = line.split("#", 1)[0].split()
        if not words:
            return
        if len(words) < 2:
            raise ValueError("expected NAME TYPE [DATA]")
        name, kind, data = norm(words[0]), words[1].upper(), words[2:]
        if kind in ("SERVFAIL", "REFUSED", "TIMEOUT"):
            if len(data) > 1:
                raise ValueError("%s takes at most a TYPE" % kind)
            qtype = None
            if data:
                qtype = getattr(QTYPE, data[0].upper())
            self.actions.setdefault(name, {})[qtype] = kind
        elif kind == "CNAME":
            if len(data) not in (1, 2) or \
                    (len(data) == 2 and data[1].lower() != "nochase"):
                raise ValueError("expected CNAME TARGET [nochase]")
            self.cnames[name] = (norm(data[0]), len(data) == 1)
        else:
            self.add_record(name, kind, data)

    def add_record(self, name, kind, data):
        if kind == "A" and len(data) == 1:
            rdata = A(str(ipaddress.IPv4Address(data[0])))
        elif kind == "AAAA" and len(data) == 1:
            rdata = AAAA(str(ipaddress.IPv6Address(data[0])))
        elif kind == "MX" and len(data) == 2:
            pref = int(data[0])
            if not 0 <= pref <= 65535:
                raise ValueError("MX preference out of range")
            rdata = MX(data[1], pref)
        elif kind == "TXT" and data:
            text = " ".join(data).encode()
            rdata = TXT([text[i:i + 255] for i in range(0, len(text), 255)])
        else:
            raise ValueError("bad record: %s %s" % (kind, " ".join(data)))
        self.records.setdefault(name, []).append(
            (getattr(QTYPE, kind), rdata))

    def owners(self):
        return set(self.records) | set(self.cnames) | set(self.actions)

    def exists(self, name):
        """True for owners and for the empty non-terminals above them."""
        if name == "":
            return True
        suffix = "." + name
        return any(o == name or o.endswith(suffix) for o in self.owners())

    def node(self, name):
        """The zone key holding name's data: name itself or a wildcard."""
        if name in self.owners():
            return name
        if self.exists(name):
            return None
        labels = name.split(".")
        for i in range(1, len(labels) + 1):
            wild = ".".join(["*"] + labels[i:]) if i < len(labels) else "*"
            if wild in self.owners():
                return wild
        return None

    def action(self, key, qtype):
        acts = self.actions.get(key, {})
        return acts.get(qtype) or acts.get(None)

    def answer(self, qname, qtype, reply):
        """Fills reply; returns None for NOERROR, else an action name."""
        name = norm(qname)
        for _ in range(MAX_CHAIN + 1):
            key = self.node(name)
            if key is None:
                if self.exists(name):
                    return None
                return "NXDOMAIN"
            act = self.action(key, qtype)
            if act:
                return act
            owner = name + "."
            if key in self.cnames and qtype != QTYPE.CNAME:
                target, chase = self.cnames[key]
                reply.add_answer(RR(owner, QTYPE.CNAME, ttl=TTL,
                                    rdata=CNAME(target + ".")))
                if not chase:
                    return None
                name = target
                continue
            for rtype, rdata in self.records.get(key, []):
                if qtype in (rtype, QTYPE.ANY):
                    reply.add_answer(RR(owner, rtype, ttl=TTL, rdata=rdata))
            if key in self.cnames and qtype in (QTYPE.CNAME, QTYPE.ANY):
                reply.add_answer(RR(owner, QTYPE.CNAME, ttl=TTL,
                                    rdata=CNAME(self.cnames[key][0] + ".")))
            return None
        return None


class ZoneResolver(BaseResolver):
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.stamp = self.file_stamp()
        self.zone = Zone(path)

    def file_stamp(self):
        st = os.stat(self.path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self):
        with self.lock:
            try:
                stamp = self.file_stamp()
                if stamp != self.stamp:
                    self.stamp = stamp
                    self.zone = Zone(self.path)
            except (OSError, ZoneError) as e:
                print("dnsserver: keeping the old zone: %s" % e,
                      file=sys.stderr, flush=True)
            return self.zone

    def resolve(self, request, handler):
        reply = request.reply()
        act = self.current().answer(request.q.qname, request.q.qtype, reply)
        if act == "TIMEOUT":
            return None
        if act:
            reply.header.rcode = getattr(RCODE, act)
        return reply


class QueryLog:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, proto, request, result):
        if not self.file:
            return
        q = request.q
        with self.lock:
            self.file.write("%s %s %s %s\n" % (
                proto, q.qname, QTYPE.get(q.qtype, q.qtype), result))
            self.file.flush()


class QuietLogger:
    """dnslib's logger interface; only real errors are worth a line."""

    def log_recv(self, handler, data):
        pass

    log_send = log_request = log_reply = log_truncated = log_data = log_recv

    def log_error(self, handler, e):
        if not isinstance(e, NoAnswer):
            print("dnsserver: %s" % e, file=sys.stderr, flush=True)


class Handler(DNSHandler):
    querylog = None

    def get_reply(self, data):
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        if reply is None:
            self.querylog.write(self.protocol, request, "TIMEOUT")
            if self.protocol == "tcp":
                self.hold()
            raise NoAnswer("not answering")
        rdata = reply.pack()
        result = RCODE.get(reply.header.rcode)
        if self.protocol == "udp" and len(rdata) > UDP_MAX:
            # dnslib's own truncate() drops the question too; keep it so
            # that clients can match the reply to their query.
            short = request.reply()
            short.header.tc = 1
            short.header.rcode = reply.header.rcode
            rdata = short.pack()
            result = "TRUNCATED"
        self.querylog.write(self.protocol, request, result)
        return rdata

    def hold(self):
        """A TCP server that never answers: wait for the client to quit."""
        self.request.settimeout(0.5)
        deadline = time.monotonic() + HOLD_SECONDS
        while not stopping.is_set() and time.monotonic() < deadline:
            try:
                if not self.request.recv(512):
                    return
            except socket.timeout:
                continue
            except OSError:
                return


def start_servers(resolver, address, port):
    """UDP and TCP servers on one port; port 0 finds one free for both."""
    for _ in range(50):
        udp = DNSServer(resolver, address=address, port=port,
                        logger=QuietLogger(), handler=Handler)
        chosen = udp.server.server_address[1]
        try:
            tcp = DNSServer(resolver, address=address, port=chosen,
                            tcp=True, logger=QuietLogger(), handler=Handler)
        except OSError:
            udp.server.server_close()
            if port != 0:
                raise
            continue
        return udp, tcp, chosen
    raise OSError("no port free for both UDP and TCP")


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    os.rename(tmp, path)


def loopback(text):
    addr = ipaddress.IPv4Address(text)
    if addr not in ipaddress.IPv4Network("127.0.0.0/8"):
        raise argparse.ArgumentTypeError("%s is not in 127.0.0.0/8" % text)
    return text


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def main():
    p = argparse.ArgumentParser(description="DNS server for mxlane tests")
    p.add_argument("--zone", required=True)
    p.add_argument("--address", type=loopback, default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--watch-pid", type=int, metavar="PID",
                   help="exit when process PID is gone")
    args = p.parse_args()

    try:
        resolver = ZoneResolver(args.zone)
    except (OSError, ZoneError) as e:
        print("dnsserver: %s" % e, file=sys.stderr)
        return 2
    Handler.querylog = QueryLog(args.log)

    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    udp, tcp, port = start_servers(resolver, args.address, args.port)
    udp.start_thread()
    tcp.start_thread()
    print(port, flush=True)
    if args.port_file:
        write_port_file(args.port_file, port)

    while not stopping.wait(1.0):
        if args.watch_pid and not alive(args.watch_pid):
            break
    for s in (udp, tcp):
        s.stop()
        s.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
