#!/bin/bash
# NAME
#	sink_selftest.sh - the test MX tests/servers/smtpsink.py does what it says
# DESCRIPTION
#	Starts one sink with a listener per behaviour on 127.0.0.101-118 (one
#	random high port, retried if taken) and drives it with python3's
#	smtplib and raw sockets from source addresses 127.0.0.5 and 127.0.0.6,
#	checking the replies the client gets and what the sink logged:
#	  - a normal delivery: EHLO keywords, every log field (peer, helo,
#	    envelope, size and sha256 of the dot-unstuffed content, Message-ID,
#	    X-Test-Id, txn/msg indexes, the saved copy), 3 messages in one
#	    session, the session line;
#	  - greet421 closes, greet554 answers 503 to everything but QUIT;
#	  - mail451/mail550 per listener and mail550- per sender; r450-/r550-/
#	    r452-/r451- per recipient mixed with accepted ones; rcpt450 per
#	    listener; data451 per listener (after the dot) and data554- per
#	    recipient; dropdata closes in the middle of DATA; stallgreet and
#	    stalldata time out a client with a 2 s timeout;
#	  - STARTTLS with the generated self-signed certificate; DSN params
#	    recorded, nodsn refuses them with 555; PIPELINING groups answered,
#	    violations counted on a nopipelining listener; delay300; lines
#	    over 998 octets counted; refuse is not listening;
#	  - garbage, overlong lines, a TLS handshake that never comes, abrupt
#	    closes: the sink survives and logs no traceback;
#	  - concurrency: 3 sessions at once from 127.0.0.5 and 1 from
#	    127.0.0.6 give max 3 / 1 per peer and 4 per listener (after a
#	    SIGUSR1 reset of the maxima);
#	  - SIGTERM: exit 0, a session line for every connection, final stats,
#	    the generated certificate removed; a second sink on port 0 with
#	    --delay-ms and --max-lifetime 3 exits by itself; --watch-pid;
#	    usage errors exit 2, a taken address exits 3.
#	Takes about 13 seconds.
. "$(dirname "$0")/../lib.sh"

SINK=$SERVERS/smtpsink.py
need_file "$PYTHON" "$SINK"
need_cmd openssl
D=$T/sinktest
rm -rf "$D"
mkdir -p "$D"

# ---------------------------------------------------------------- helpers

cat >"$D/client.py" <<'PY'
"""Drives the sink for sink_selftest.sh; prints key=value tokens."""
import hashlib, smtplib, socket, ssl, sys, threading, time

def body(kind, testid, i):
    h = (b"Message-ID: <%s.%d@selftest.example>\r\nX-Test-Id: %s\r\n"
         b"Subject: selftest %d\r\n\r\n" % (testid.encode(), i, testid.encode(), i))
    if kind == "dots":
        b = b".\r\n..\r\n.x\r\nmiddle . dot\r\n...\r\nend\r\n"
    elif kind == "long":
        b = b"short\r\n" + b"L" * 1200 + b"\r\n" + b"M" * 998 + b"\r\n"
    elif kind == "big":
        b = b"".join(b"line %05d of a big message .................\r\n" % n
                     for n in range(200))
    else:
        b = b"Hello %d.\r\n" % i
    return h + b

def kv(d):
    print(" ".join("%s=%s" % (k, v) for k, v in d.items()), flush=True)

def disc(e):
    return "timeout" if "timed out" in str(e) else "disconnected"

def deliver(argv):
    host, port, src = argv[0], int(argv[1]), argv[2]
    o = dict(x.split("=", 1) for x in argv[3:])
    to = o.get("to", "ok@dest.example").split(",")
    mopt = o["mopt"].split() if o.get("mopt") else []
    ropt = o["ropt"].split() if o.get("ropt") else []
    timeout = float(o.get("timeout", "10"))
    out = {}
    t0 = time.monotonic()
    try:
        s = smtplib.SMTP(host, port, source_address=(src, 0), timeout=timeout)
    except smtplib.SMTPConnectError as e:
        out["connect"] = e.smtp_code
        return kv(out)
    except smtplib.SMTPServerDisconnected as e:
        out["connect"] = disc(e)
        out["secs"] = "%.2f" % (time.monotonic() - t0)
        return kv(out)
    except ConnectionRefusedError:
        out["connect"] = "refused"
        return kv(out)
    out["connect"] = 220
    out["ehlo"] = s.ehlo()[0]
    out["ext"] = ",".join(sorted(k.upper() for k in s.esmtp_features))
    if o.get("starttls"):
        out["starttls"] = s.starttls(context=ssl._create_unverified_context())[0]
        s.ehlo()
        out["ext2"] = ",".join(sorted(k.upper() for k in s.esmtp_features))
    n = int(o.get("count", "1"))
    m, r, d, sha = [], [], [], []
    try:
        for i in range(n):
            msg = body(o.get("kind", "plain"), o.get("id", "none"), i)
            sha.append(hashlib.sha256(msg).hexdigest())
            m.append(str(s.mail(o.get("from", "sender@src.example"), mopt)[0]))
            r.append(",".join(str(s.rcpt(a, ropt)[0]) for a in to))
            t0 = time.monotonic()
            try:
                d.append(str(s.data(msg)[0]))
            except smtplib.SMTPDataError as e:
                d.append(str(e.smtp_code))
            except smtplib.SMTPServerDisconnected as e:
                d.append(disc(e))
                out["secs"] = "%.2f" % (time.monotonic() - t0)
                break
        else:
            out["quit"] = s.quit()[0]
    finally:
        out.update(mail=";".join(m), rcpt=";".join(r), data=";".join(d),
                   sha=";".join(sha), size=len(msg))
        kv(out)

def raw(host, port, src, timeout=5):
    c = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(src, 0))
    return c, c.makefile("rb")

def replies(f, n):
    """codes of the next n replies (multi-line replies count once)"""
    codes = []
    while len(codes) < n:
        line = f.readline()
        if not line:
            codes.append("EOF")
            break
        if line[3:4] != b"-":
            codes.append(line[:3].decode())
    return " ".join(codes)

def greet(argv):
    """the greeting, then the replies to EHLO, MAIL, QUIT ("EOF" when the
    server has closed the connection)"""
    c, f = raw(argv[0], int(argv[1]), argv[2])
    out = [replies(f, 1)]
    for cmd in (b"EHLO x.example", b"MAIL FROM:<a@b.example>", b"QUIT"):
        try:
            c.sendall(cmd + b"\r\n")
            out.append(replies(f, 1))
        except OSError:
            out.append("EOF")
        if out[-1] == "EOF":
            break
    print(" ".join(out))

def pipeline(argv):
    c, f = raw(argv[0], int(argv[1]), argv[2])
    out = [replies(f, 1)]
    c.sendall(b"EHLO pipe.example\r\n")
    replies(f, 1)
    c.sendall(b"MAIL FROM:<p@src.example>\r\nRCPT TO:<a@dest.example>\r\n"
              b"RCPT TO:<r550-b@dest.example>\r\nRCPT TO:<c@dest.example>\r\n"
              b"DATA\r\n")
    out.append(replies(f, 5))
    c.sendall(b"X-Test-Id: %s\r\n\r\npipelined\r\n.\r\nQUIT\r\n" % argv[3].encode())
    out.append(replies(f, 2))
    print(" | ".join(out))

def delay(argv):
    c, f = raw(argv[0], int(argv[1]), argv[2])
    replies(f, 1)
    t0 = time.monotonic()
    c.sendall(b"NOOP\r\n")
    code = replies(f, 1)
    print("%s %.2f" % (code, time.monotonic() - t0))
    c.sendall(b"QUIT\r\n")
    replies(f, 1)

def junk(argv):
    host, port, src = argv[0], int(argv[1]), argv[2]
    # garbage, an overlong line, out-of-sequence commands, bad syntax
    c, f = raw(host, port, src)
    replies(f, 1)
    c.sendall(b"\x00\xff\xfe garbage \x80\r\n" + b"A" * 10000 + b"\r\n"
              b"RCPT TO:<x@y.example>\r\nDATA\r\nMAIL FROM:<a@b.example>\r\n"
              b"EHLO\r\nHELO h.example\r\nMAIL FROM:<broken\r\n"
              b"MAIL FROM:<a@b.example> BODY=8BITMIME\r\n"
              b"RCPT TO:<c@d.example> NOTIFY=SUCCESS\r\nRSET\r\n")
    got = replies(f, 11)
    c.sendall(b"EHL")           # half a command, then gone
    c.close()
    # STARTTLS, then plaintext garbage instead of a TLS hello
    c, f = raw(host, port, src)
    replies(f, 1)
    c.sendall(b"EHLO t.example\r\nSTARTTLS\r\n")
    tls = replies(f, 2)
    c.sendall(b"this is not a TLS client hello\r\n" * 20)
    c.close()
    # connect and vanish; and a reset in the middle of DATA
    c, f = raw(host, port, src)
    c.close()
    c, f = raw(host, port, src)
    replies(f, 1)
    c.sendall(b"EHLO r.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
    replies(f, 3)
    c.sendall(b"Subject: half\r\n\r\nhalf a mess")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    # too many bogus commands: 421 and closed
    c, f = raw(host, port, src)
    replies(f, 1)
    c.sendall(b"BOGUS\r\n" * 25)
    bogus = replies(f, 21).split()
    print("junk=%s tls=%s bogus_last=%s" % (got.replace(" ", ","), tls.replace(" ", ","),
                                            ",".join(bogus[-3:])))

def concurrent(argv):
    host, port = argv[0], int(argv[1])
    srcs = ["127.0.0.5", "127.0.0.5", "127.0.0.5", "127.0.0.6"]
    bar = threading.Barrier(len(srcs), timeout=20)
    res = []
    def one(i, src):
        try:
            s = smtplib.SMTP(host, port, source_address=(src, 0), timeout=20)
            s.ehlo()
            bar.wait()
            s.sendmail("c@src.example", ["c%d@dest.example" % i],
                       body("plain", "conc-%d" % i, i))
            bar.wait()
            s.quit()
            res.append("ok")
        except Exception as e:
            res.append(repr(e))
            bar.abort()
    ts = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(srcs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    print(",".join(sorted(res)))

{"deliver": deliver, "greet": greet, "pipeline": pipeline,
 "delay": delay, "junk": junk, "concurrent": concurrent}[sys.argv[1]](sys.argv[2:])
PY

cat >"$D/logq.py" <<'PY'
"""logq.py LOG EXPR: prints EXPR evaluated over the sink's JSON log.
R: every record; M: message records; msg(ID): the one message with that
X-Test-Id (None unless exactly one); of(TYPE): records of a type;
sess(ID): the session line of the session that carried ID."""
import json, sys
R = [json.loads(l) for l in open(sys.argv[1])]
M = [r for r in R if r["type"] == "message"]
def of(t):
    return [r for r in R if r["type"] == t]
def msg(i):
    m = [r for r in M if r.get("x_test_id") == i]
    return m[0] if len(m) == 1 else None
def sess(i):
    m = [r for r in R if r.get("x_test_id") == i]
    s = [r for r in of("session") if m and r["session"] == m[0]["session"]]
    return s[0] if s else None
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list)) or v is None else v)
PY

client() { timeout -k 5 60 "$PYTHON" "$D/client.py" "$@"; }
logq() { "$PYTHON" "$D/logq.py" "$SINKLOG" "$1"; }
statq() { "$PYTHON" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$SINK_STATS" "$1"; }
# between X LO HI: LO <= X < HI (decimals)
between() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; }
assert_between() {
	if between "$1" "$2" "$3"; then pass; else fail "${4:-value} $1 is not in [$2, $3)"; fi
}

# stop_sink: SIGTERM, then it must exit 0 within 10 s
stop_sink() {
	kill -TERM "$SINK_PID"
	if wait_for 10 sh -c "! kill -0 $SINK_PID 2>/dev/null"; then
		wait "$SINK_PID"
		assert_eq 0 "$?" "sink exit status after SIGTERM"
	else
		fail "sink did not exit within 10 s of SIGTERM"
		kill -9 "$SINK_PID"
	fi
}

A=127.0.0.101    # normal
C=127.0.0.5
C2=127.0.0.6

# ---------------------------------------------------------------- start

section "start one sink, a listener per behaviour"
start_sink main \
    --listen $A:@P@ \
    --listen 127.0.0.102:@P@=greet421 \
    --listen 127.0.0.103:@P@ --behaviour 127.0.0.103:@P@=greet554 \
    --listen 127.0.0.104:@P@=mail451 \
    --listen 127.0.0.105:@P@=mail550 \
    --listen 127.0.0.106:@P@ --behaviour 127.0.0.106=data451 \
    --listen 127.0.0.108:@P@=dropdata \
    --listen 127.0.0.109:@P@=stallgreet \
    --listen 127.0.0.110:@P@=stalldata \
    --listen 127.0.0.111:@P@=starttls \
    --listen 127.0.0.112:@P@=nodsn \
    --listen 127.0.0.113:@P@=dsn \
    --listen 127.0.0.114:@P@=nopipelining \
    --listen 127.0.0.115:@P@=delay300 \
    --listen 127.0.0.116:@P@=refuse \
    --listen 127.0.0.117:@P@=rcpt450 \
    --listen 127.0.0.118:@P@ \
    --save-dir "$SRV/main/saved" --stall-seconds 30 --max-lifetime 300
P=$PORT
READY=$(cat "$SINK_DIR/ready")
assert_contains "$READY" "pid=$SINK_PID" "ready file"
assert_contains "$READY" "listen=127.0.0.103:$P greet554" "ready file"
assert_contains "$READY" "listen=127.0.0.106:$P data451" "ready file"
assert_contains "$READY" "refused=127.0.0.116:$P" "ready file"
CERT=$(sed -n 's/^cert=//p' "$SINK_DIR/ready")
assert_contains "$(openssl x509 -in "$CERT" -noout -subject 2>&1)" "smtpsink.test" "generated certificate"

# ---------------------------------------------------------------- normal

section "normal delivery and every log field"
R=$(client deliver $A $P $C id=n1 kind=dots from=alice@src.example to=bob@dest.example,carol@dest.example)
assert_eq "220 250 250 250,250 250 221" \
    "$(kv connect "$R") $(kv ehlo "$R") $(kv mail "$R") $(kv rcpt "$R") $(kv data "$R") $(kv quit "$R")" \
    "replies to a normal delivery"
assert_eq "8BITMIME,DSN,ENHANCEDSTATUSCODES,PIPELINING,SIZE" "$(kv ext "$R")" "EHLO keywords of a normal listener"
wait_for 5 grep -q '"type":"session"' "$SINKLOG"
assert_eq "$A:$P $C" "$(logq 'msg("n1")["listener"] + " " + msg("n1")["peer_ip"]')" "listener and peer"
assert_match "$(logq 'msg("n1")["peer_port"]')" '^[0-9]+$' "peer port"
assert_eq "alice@src.example [\"bob@dest.example\", \"carol@dest.example\"]" \
    "$(logq 'msg("n1")["mail_from"] + " " + json.dumps(msg("n1")["rcpt_tos"])')" "envelope"
assert_match "$(logq 'msg("n1")["helo"]')" '.' "helo"
assert_eq "$(kv sha "$R")" "$(logq 'msg("n1")["sha256"]')" "sha256 of the dot-unstuffed content"
assert_eq "$(kv size "$R")" "$(logq 'msg("n1")["size"]')" "size"
assert_eq "<n1.0@selftest.example> n1" "$(logq 'msg("n1")["message_id"] + " " + msg("n1")["x_test_id"]')" "Message-ID and X-Test-Id"
assert_eq "False 1 1 0 0 False" \
    "$(logq '" ".join(str(msg("n1")[k]) for k in ("tls", "txn", "msg", "long_lines", "bare_lf", "eightbit"))')" \
    "tls, txn, msg, long_lines, bare_lf, eightbit"
assert_eq "$(kv sha "$R")" "$(sha256sum <"$(logq 'msg("n1")["file"]')" | cut -d' ' -f1)" "saved copy"
assert_eq "1 1 True quit 220" \
    "$(logq '" ".join(str(sess("n1")[k]) for k in ("messages", "transactions", "quit", "end_reason", "greeting"))')" \
    "session line"
assert_eq "1" "$(logq 'len([r for r in of("connect") if r["session"] == msg("n1")["session"]])')" "connect line"

R=$(client deliver $A $P $C id=n3 count=3)
assert_eq "250;250;250" "$(kv data "$R")" "three messages in one session"
wait_for 5 sh -c "[ \"\$($PYTHON $D/logq.py $SINKLOG 'sess(\"n3\") is not None')\" = True ]"
assert_eq "[1, 2, 3] [1, 2, 3] 3" \
    "$(logq 'json.dumps([m["txn"] for m in M if m["x_test_id"] == "n3"]) + " " + json.dumps([m["msg"] for m in M if m["x_test_id"] == "n3"]) + " " + str(sess("n3")["messages"])')" \
    "txn and msg indexes, session message count"

R=$(client deliver $A $P $C id=long1 kind=long)
assert_eq "250" "$(kv data "$R")" "a message with a 1200-octet line is accepted"
assert_eq "1 1200" "$(logq 'str(msg("long1")["long_lines"]) + " " + str(msg("long1")["max_line"])')" \
    "long_lines counts lines over 998 octets (a 998-octet line is fine)"

# ---------------------------------------------------------------- greetings

section "greet421, greet554, refuse"
R=$(client deliver 127.0.0.102 $P $C)
assert_eq "421" "$(kv connect "$R")" "greet421"
assert_eq "421 EOF" "$(client greet 127.0.0.102 $P $C)" "greet421: the sink closes the connection"
assert_eq "554 503 503 221" "$(client greet 127.0.0.103 $P $C)" "greet554: 503 to all but QUIT"
assert_eq "220 250 250 221" "$(client greet $A $P $C)" "a normal greeting, for comparison"
R=$(client deliver 127.0.0.116 $P $C)
assert_eq "refused" "$(kv connect "$R")" "refuse listener does not listen"

# ---------------------------------------------------------------- MAIL, RCPT

section "MAIL and RCPT faults"
R=$(client deliver 127.0.0.104 $P $C id=m451)
assert_eq "451" "$(kv mail "$R")" "mail451"
R=$(client deliver 127.0.0.105 $P $C id=m550)
assert_eq "550" "$(kv mail "$R")" "mail550"
R=$(client deliver $A $P $C id=m550p from=mail550-x@src.example)
assert_eq "550" "$(kv mail "$R")" "mail550- sender prefix"
wait_for 5 sh -c "[ \"\$($PYTHON $D/logq.py $SINKLOG 'len(of(\"mail_rejected\"))')\" = 3 ]"
assert_eq "3" "$(logq 'len(of("mail_rejected"))')" "mail_rejected lines"
assert_match "$(logq 'of("mail_rejected")[0]["reply"]')" '^451 4\.3\.0 ' "mail451 reply"

R=$(client deliver $A $P $C id=mix to=a@dest.example,r450-b@dest.example,r550-c@dest.example,r452-d@dest.example,r451-e@dest.example,f@dest.example)
assert_eq "250,450,550,452,451,250 250" "$(kv rcpt "$R") $(kv data "$R")" "mixed RCPT replies"
assert_eq '["a@dest.example", "f@dest.example"]' "$(logq 'msg("mix")["rcpt_tos"]')" "only accepted recipients in rcpt_tos"
assert_match "$(logq '" | ".join(x["reply"] for x in msg("mix")["rcpts_rejected"])')" \
    '^450 4\.2\.1 <r450-b@dest\.example>.* \| 550 5\.1\.1 .* \| 452 .* \| 451 ' "rejected recipients recorded"
R=$(client deliver 127.0.0.117 $P $C id=r450all)
assert_eq "450" "$(kv rcpt "$R")" "rcpt450 listener"

# ---------------------------------------------------------------- DATA

section "DATA faults"
R=$(client deliver 127.0.0.106 $P $C id=d451)
assert_eq "250 250 451" "$(kv mail "$R") $(kv rcpt "$R") $(kv data "$R")" "data451 after the dot"
R=$(client deliver $A $P $C id=d554 to=ok@dest.example,data554-x@dest.example)
assert_eq "250,250 554" "$(kv rcpt "$R") $(kv data "$R")" "data554- recipient prefix"
wait_for 5 sh -c "[ \"\$($PYTHON $D/logq.py $SINKLOG 'len(of(\"rejected\"))')\" = 2 ]"
assert_eq "d451 d554" "$(logq '" ".join(r["x_test_id"] for r in of("rejected"))')" "rejected lines"
assert_eq "None None" "$(logq 'str(msg("d451")) + " " + str(msg("d554"))')" "no message line for a rejected message"

R=$(client deliver 127.0.0.108 $P $C id=drop kind=big)
assert_eq "disconnected" "$(kv data "$R")" "dropdata closes the connection"
wait_for 5 sh -c "[ \"\$($PYTHON $D/logq.py $SINKLOG 'len(of(\"dropped\"))')\" = 1 ]"
DB=$(logq 'of("dropped")[0]["bytes"]')
assert_eq 100 "$DB" "dropdata drops after --dropdata-bytes (100) of $(kv size "$R") octets"
assert_eq "dropdata" "$(logq '[r for r in of("session") if r["listener"].startswith("127.0.0.108:")][0]["end_reason"]')" "dropdata session end"

R=$(client deliver 127.0.0.109 $P $C timeout=2)
assert_eq "timeout" "$(kv connect "$R")" "stallgreet: the client times out"
assert_between "$(kv secs "$R")" 1.8 5 "stallgreet: seconds to time out"
R=$(client deliver 127.0.0.110 $P $C id=stall timeout=2)
assert_eq "250 250 timeout" "$(kv mail "$R") $(kv rcpt "$R") $(kv data "$R")" "stalldata: no reply after the dot"
assert_between "$(kv secs "$R")" 1.8 5 "stalldata: seconds to time out"
wait_for 5 sh -c "[ \"\$($PYTHON $D/logq.py $SINKLOG 'len([r for r in of(\"session\") if r[\"end_reason\"] == \"stalldata\"])')\" = 1 ]"
assert_eq "data None" "$(logq 'of("stalled")[0]["stage"] + " " + str(msg("stall"))')" "stalled line, no message line"
assert_eq "stallgreet None" \
    "$(logq '[r for r in of("session") if r["listener"].startswith("127.0.0.109:")][0]["end_reason"] + " " + str([r for r in of("session") if r["listener"].startswith("127.0.0.109:")][0]["greeting"])')" \
    "stallgreet session line"

# ---------------------------------------------------------------- extensions

section "STARTTLS, DSN, PIPELINING, delay"
R=$(client deliver 127.0.0.111 $P $C id=tls1 starttls=1)
assert_contains "$(kv ext "$R")" "STARTTLS" "EHLO of the starttls listener"
assert_not_contains "$(kv ext2 "$R")" "STARTTLS" "EHLO after STARTTLS"
assert_eq "220 250" "$(kv starttls "$R") $(kv data "$R")" "STARTTLS with the self-signed certificate, then delivery"
wait_for 5 sh -c "[ \"\$($PYTHON $D/logq.py $SINKLOG 'sess(\"tls1\") is not None')\" = True ]"
assert_eq "True True" "$(logq 'str(msg("tls1")["tls"]) + " " + str(sess("tls1")["tls"])')" "tls recorded"
assert_match "$(logq 'sess("tls1")["tls_version"]')" '^TLSv1\.[23]$' "TLS version recorded"
R=$(client deliver $A $P $C)
assert_not_contains "$(kv ext "$R")" "STARTTLS" "a normal listener does not offer STARTTLS"

R=$(client deliver 127.0.0.113 $P $C id=dsn1 "mopt=RET=HDRS ENVID=QQ+2Bx.1" "ropt=NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+40dest.example")
assert_eq "250 250 250" "$(kv mail "$R") $(kv rcpt "$R") $(kv data "$R")" "DSN parameters accepted"
assert_contains "$(kv ext "$R")" "DSN" "EHLO of the dsn listener"
assert_eq 'HDRS QQ+2Bx.1 QQ+x.1 ["SUCCESS,DELAY"] ["rfc822;bob+40dest.example"]' \
    "$(logq '" ".join([msg("dsn1")["ret"], msg("dsn1")["envid"], msg("dsn1")["envid_decoded"], json.dumps(msg("dsn1")["notify"]), json.dumps(msg("dsn1")["orcpt"])])')" \
    "DSN parameters recorded"
assert_match "$(logq 'msg("dsn1")["mail_params"]')" 'RET=HDRS ENVID=QQ\+2Bx\.1$' "raw MAIL parameters"
assert_eq "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+40dest.example" "$(logq 'msg("dsn1")["rcpt_params"][0]')" "raw RCPT parameters"
R=$(client deliver 127.0.0.112 $P $C id=nodsn "ropt=NOTIFY=NEVER")
assert_not_contains "$(kv ext "$R")" "DSN" "EHLO of the nodsn listener"
assert_eq "250 555" "$(kv mail "$R") $(kv rcpt "$R")" "nodsn: NOTIFY refused"
R=$(client deliver 127.0.0.112 $P $C "mopt=RET=FULL")
assert_eq "555" "$(kv mail "$R")" "nodsn: RET refused"

assert_eq "220 | 250 250 550 250 354 | 250 221" "$(client pipeline $A $P $C pipe1)" "a PIPELINING group"
assert_eq "220 | 250 250 550 250 354 | 250 221" "$(client pipeline 127.0.0.114 $P $C pipe2)" "a pipelined group on a nopipelining listener"
wait_for 5 sh -c "[ \"\$($PYTHON $D/logq.py $SINKLOG 'sess(\"pipe2\") is not None')\" = True ]"
assert_eq '["a@dest.example", "c@dest.example"]' "$(logq 'msg("pipe1")["rcpt_tos"]')" "pipelined recipients"
assert_eq "0 0" "$(logq 'str(sess("pipe1")["pipelining_violations"]) + " " + str(sess("pipe1")["early_data"])')" "no violation when PIPELINING is offered"
assert_ne "0" "$(logq 'sess("pipe2")["pipelining_violations"]')" "pipelining violations counted when not offered"
R=$(client deliver 127.0.0.114 $P $C)
assert_not_contains "$(kv ext "$R")" "PIPELINING" "EHLO of the nopipelining listener"

R=$(client delay 127.0.0.115 $P $C)
assert_eq "250" "${R% *}" "NOOP on the delay300 listener"
assert_between "${R#* }" 0.29 3 "delay300: seconds for one reply"

# ---------------------------------------------------------------- robustness

section "client misbehaviour"
R=$(client junk $A $P $C)
assert_eq "500,500,503,503,503,501,250,501,555,503,250" "$(kv junk "$R")" "replies to garbage and bad sequences"
assert_eq "250,502" "$(kv tls "$R")" "STARTTLS on a listener that does not offer it"
R2=$(client junk 127.0.0.111 $P $C)
assert_eq "250,220" "$(kv tls "$R2")" "STARTTLS, then garbage instead of a handshake"
assert_eq "500,500,421" "$(kv bogus_last "$R")" "too many bogus commands: 421"
R=$(client deliver $A $P $C id=alive)
assert_eq "250" "$(kv data "$R")" "the sink still delivers after all that"
assert_eq "1" "$(logq 'len([r for r in M if r["x_test_id"] == "alive"])')" "and logs it"

# ---------------------------------------------------------------- concurrency

section "concurrency per peer IP and per listener"
wait_for 10 sh -c "[ \"\$($PYTHON -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"sessions_active\"])' $SINK_STATS)\" = 0 ]"
assert_eq 0 "$(statq 's["sessions_active"]')" "no session open before the concurrency test"
kill -USR1 "$SINK_PID"
wait_for 5 grep -q '"type":"mark"' "$SINKLOG"
assert_eq "0 {}" "$(statq 'str(s["max_active"]) + " " + json.dumps(s["max_active_per_peer"])')" "SIGUSR1 resets the maxima"
assert_eq "ok,ok,ok,ok" "$(client concurrent 127.0.0.118 $P)" "4 clients at once"
wait_for 10 sh -c "[ \"\$($PYTHON -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"sessions_active\"])' $SINK_STATS)\" = 0 ]"
assert_eq "3 1 4 3 4" \
    "$(statq '" ".join(str(x) for x in (s["max_active_per_peer"]["127.0.0.5"], s["max_active_per_peer"]["127.0.0.6"], s["max_active_per_listener"]["127.0.0.118:'$P'"], s["max_active_per_peer_listener"]["127.0.0.5>127.0.0.118:'$P'"], s["max_active"]))')" \
    "max simultaneous sessions: per peer .5 .6, per listener, per peer+listener, total"
assert_eq "3 1" "$(logq 'str(len([r for r in M if r["x_test_id"].startswith("conc-") and r["peer_ip"] == "127.0.0.5"])) + " " + str(len([r for r in M if r["x_test_id"].startswith("conc-") and r["peer_ip"] == "127.0.0.6"]))')" \
    "messages per source address"

# ---------------------------------------------------------------- stopping

section "SIGTERM, lifetime, usage"
stop_sink
assert_eq "True SIGTERM 0" "$(statq 'str(s["final"]) + " " + s["stop_reason"] + " " + str(s["sessions_active"])')" "final stats"
assert_eq "$(logq 'len(of("connect"))')" "$(logq 'len(of("session"))')" "a session line for every connection"
assert_eq "$(logq 'len(M)')" "$(statq 's["messages_total"]')" "messages_total equals the message lines"
if [ -e "$CERT" ]; then fail "generated certificate $CERT left behind"; else pass; fi
if grep -q Traceback "$SRV/main/err"; then fail "traceback on the sink's stderr" "$(cat "$SRV/main/err")"; else pass; fi

start_sink life --listen 127.0.0.101:0 --listen 127.0.0.102:0 --delay-ms 200 --max-lifetime 3
LP=$(sed -n 's/^listen=127\.0\.0\.101:\([0-9]*\) .*/\1/p' "$SINK_DIR/ready")
assert_match "$LP" '^[1-9][0-9]*$' "port 0 gets a real port in the ready file"
R=$(client delay 127.0.0.101 "$LP" $C)
assert_between "${R#* }" 0.19 3 "--delay-ms 200: seconds for one reply"
if wait_for 8 sh -c "! kill -0 $SINK_PID 2>/dev/null"; then
	wait "$SINK_PID"
	assert_eq 0 "$?" "exit status after --max-lifetime"
else
	fail "sink did not exit by itself after --max-lifetime 3"
fi

sleep 30 &
WPID=$!
"$PYTHON" "$SINK" --listen 127.0.0.101:0 --watch-pid $WPID --ready-file "$D/w.ready" 2>"$D/w.err" &
SINK_PID=$!
track_pid "$SINK_PID"
wait_for 10 test -e "$D/w.ready"
kill $WPID
wait $WPID 2>/dev/null
if wait_for 5 sh -c "! kill -0 $SINK_PID 2>/dev/null"; then pass; else fail "--watch-pid: sink still running"; fi

assert_exit 2 "$PYTHON" "$SINK" --listen 10.1.2.3:2525
assert_contains "$(last_err)" "not a loopback address" "non-loopback refused"
assert_exit 2 "$PYTHON" "$SINK" --listen 127.0.0.101:2525 --behaviour 127.0.0.101:2525=bogus
assert_contains "$(last_err)" "unknown behaviour" "unknown behaviour"
start_sink taken --listen 127.0.0.101:@P@
assert_exit 3 "$PYTHON" "$SINK" --listen 127.0.0.101:$PORT
assert_contains "$(last_err)" "cannot listen on 127.0.0.101:$PORT" "address in use"
stop_sink

finish
