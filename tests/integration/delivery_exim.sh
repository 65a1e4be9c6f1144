#!/bin/bash
# NAME
#	delivery_exim.sh - what queuerun puts on the wire, as Exim sees it
# DESCRIPTION
#	Real, independently written servers on loopback: two Exim daemons
#	(tests/servers/exim.conf; start_exim) and a server with limits
#	(tests/servers/limitsmtp.py, aiosmtpd), one DNS server. One
#	`queuerun run` pass each time.
#
#	  byte-exactness ......... a corpus (two To:, two Cc:, a folded
#	                           Subject in UTF-8, a 1,200-octet header
#	                           line, a 1,200-octet UTF-8 body line,
#	                           lines starting with a dot, a 10 MB
#	                           attachment) goes through sendmail and
#	                           queuerun (STARTTLS) to Exim's maildir;
#	                           what Exim stored, less its Received:, is
#	                           the submitted message plus sendmail's
#	                           Received: and the documented treatment of
#	                           long lines, octet for octet
#	  CHUNKING ............... Exim offers it; two messages whose every
#	                           recipient is refused, then a good one:
#	                           bounced, bounced, delivered, one pass, and
#	                           no protocol error in Exim's log
#	  no 8BITMIME ............ Exim with accept_8bitmime = false gets a
#	                           7-bit and an 8-bit message (declared with
#	                           -B8BITMIME) in the same pass
#	  limits ................. 452 past 2 recipients, 421 after 2
#	                           messages: 5 recipients and 5 messages all
#	                           delivered in one pass, no deferral
# SEE ALSO
#	delivery_faults.sh, tests/servers/exim.conf
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/limitsmtp.py" \
    "$SERVERS/exim.conf" "$SENDMAIL" "$QUEUERUN"
need_cmd exim4

IP_EXIM=127.0.0.151
IP_NO8=127.0.0.152
IP_LIM=127.0.0.153

section "start two Exim daemons, a server with limits and a DNS server"
cat >"$SRV/zone" <<EOF
src.example	MX 10 mx.exim.test
exim.test	MX 10 mx.exim.test
mx.exim.test	A $IP_EXIM
no8.test	MX 10 mx.no8.test
mx.no8.test	A $IP_NO8
limits.test	MX 10 mx.limits.test
mx.limits.test	A $IP_LIM
EOF
start_dns "$SRV/zone"
P=$((32000 + RANDOM % 8000))
start_exim main $IP_EXIM $P "log_selector = +8bitmime"
EXIM_MAIN=$EXIM_DIR
start_exim no8 $IP_NO8 $P "accept_8bitmime = false" "tls_advertise_hosts =" \
    "log_selector = +8bitmime"
EXIM_NO8=$EXIM_DIR
"$PYTHON" "$SERVERS/limitsmtp.py" --address $IP_LIM --port $P \
    --port-file "$SRV/lim.port" --log "$SRV/lim.log" --max-rcpts 2 \
    --max-msgs 2 --watch-pid $$ >"$SRV/lim.out" 2>&1 &
track_pid $!
wait_for 20 test -s "$SRV/lim.port" && pass || fail "limits server did not start" "$(cat "$SRV/lim.out")"

setup exim \
    "resolver = \"127.0.0.1:$DNS_PORT\"" \
    "smtp_port = $P" \
    "immediate_delivery = false" \
    "smtp_data_xfer_timeout = \"60s\""

# pass: one queue run, bounded
pass_once() { assert_exit 0 timeout -k 5 120 "$QUEUERUN" run --flush; }

# maildir_files DIR ERE: the messages Exim stored with a line matching ERE
# (Exim stores them after it answered: waits up to 20 s for one)
maildir_files() {
	wait_for 20 sh -c 'grep -qsE "$0" "$1"/maildir/new/*' "$2" "$1"
	grep -lsE "$2" "$1/maildir/new/"*
}

# ---------------------------------------------------------------- corpus
section "byte-exactness: the corpus through sendmail, queuerun and Exim"
"$PYTHON" - "$SRV/corpus" <<'EOF'
import base64, random, sys
random.seed(7)
words = " ".join("word%d" % i for i in range(200))          # ~1,300 octets
hdr_long = ("X-Long: " + words)[:1200]
assert len(hdr_long.encode()) == 1200
body_long = "é" * 600                                       # 1,200 octets
att = base64.encodebytes(random.randbytes(7_500_000)).decode()
lines = [
    "From: Alice <alice@src.example>",
    "To: Bob <bob@exim.test>",
    "To: Carol <carol@exim.test>",
    "Cc: Dave <dave@exim.test>",
    "Cc: Erin <erin@exim.test>",
    "Reply-To: one@src.example",
    "Reply-To: two@src.example",
    "Date: Sat, 05 Dec 2026 10:00:00 +0000",
    "Message-ID: <corpus.1@src.example>",
    "Subject: Grüße aus Köln, a subject",
    "\tfolded onto a second line",
    hdr_long,
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b1"',
    "",
    "--b1",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "Ünïcödé body line.",
    ".a line starting with a dot",
    "..two dots",
    ".",
    body_long,
    "--b1",
    "Content-Type: application/octet-stream",
    "Content-Transfer-Encoding: base64",
    "",
] + att.rstrip("\n").split("\n") + ["--b1--", ""]
open(sys.argv[1], "wb").write("\n".join(lines).encode())
EOF
assert_eq 1 "$(pyc "int(9_000_000 < $(stat -c %s "$SRV/corpus") < 11_000_000)")" "corpus is about 10 MB"
submit_file "$SRV/corpus" -i -f alice@src.example bob@exim.test
ID_CORPUS=$NEWID
pass_once
check_log "$ID_CORPUS" bob@exim.test sent '2\.0\.0' "250"
grep -q "Untrusted TLS connection established to mx.exim.test" "$LOGFILE" && pass || \
    fail "the corpus went without TLS" "$(tail -5 "$LOGFILE")"
F=$(maildir_files "$EXIM_MAIN" "^Message-ID: <corpus.1@src.example>")
assert_eq 1 "$(printf '%s\n' "$F" | grep -c .)" "messages Exim stored for bob"
"$PYTHON" - "$SRV/corpus" "$F" >"$SRV/compare.out" 2>&1 <<'EOF'
import sys
sub = open(sys.argv[1], "rb").read()
got = open(sys.argv[2], "rb").read()       # Exim's maildir: LF line ends

def fields(head):
    out = []
    for l in head.split(b"\n"):
        if l[:1] in (b" ", b"\t") and out:
            out[-1] += b"\n" + l
        else:
            out.append(l)
    return out

gh, gb = got.split(b"\n\n", 1)
sh, sb = sub.split(b"\n\n", 1)
gf = fields(gh)
# Exim's Received: comes first, then sendmail's: both added fields.
assert gf[0].startswith(b"Received: from ") and b"by exim.test" in gf[0], gf[0]
assert gf[1].startswith(b"Received: "), gf[1]
gf = gf[2:]

# The documented treatment: a header line over 998 octets is folded
# before its last blank within the limit; a body line over 998 octets is
# broken at the limit or up to 3 octets before, never inside UTF-8.
def fold(f):
    out = b""
    for line in f.split(b"\n"):
        while len(line) > 998:
            cut = line.rindex(b" ", 0, 998)
            out += line[:cut] + b"\n"
            line = line[cut:]
        out += line + b"\n"
    return out[:-1]

def split(line):
    out = []
    while len(line) > 998:
        cut = 998
        while (line[cut] & 0xC0) == 0x80:
            cut -= 1
        out.append(line[:cut])
        line = line[cut:]
    return out + [line]

want_h = [fold(f) for f in fields(sh)]
want_b = b"\n".join(p for l in sb.split(b"\n") for p in split(l))
if gf != want_h:
    for a, b in zip(gf, want_h):
        if a != b:
            print("header differs:\n got  %r\n want %r" % (a[:200], b[:200]))
            break
    print("header fields: got %d, want %d" % (len(gf), len(want_h)))
    sys.exit(1)
if gb != want_b:
    i = next(i for i in range(min(len(gb), len(want_b))) if gb[i] != want_b[i]) \
        if gb[:len(want_b)] != want_b[:len(gb)] else min(len(gb), len(want_b))
    print("body differs at octet %d of %d/%d: got %r want %r"
          % (i, len(gb), len(want_b), gb[i-40:i+40], want_b[i-40:i+40]))
    sys.exit(1)
# The long lines really were long, and really were treated.
assert max(len(l) for l in got.split(b"\n")) <= 998
unfolded = [f.replace(b"\n", b"") for f in gf if f.startswith(b"X-Long:")]
assert unfolded == [b"X-Long: " + sh.split(b"X-Long: ")[1].split(b"\n")[0]]
print("identical: %d octets" % len(got))
EOF
rc=$?
assert_eq 0 "$rc" "what Exim stored is what was submitted (compare: $(tail -3 "$SRV/compare.out"))"
assert_contains "$(cat "$SRV/compare.out")" "identical"

# ---------------------------------------------------------------- CHUNKING
section "CHUNKING: two messages refused for every recipient, then a good one"
grep -q CHUNKING <(printf 'EHLO t\r\nQUIT\r\n' | timeout 5 "$PYTHON" -c "
import socket,sys; s=socket.create_connection(('$IP_EXIM',$P)); s.sendall(sys.stdin.buffer.read()); import time; time.sleep(1); print(s.recv(4096).decode())") \
    && pass || fail "Exim does not offer CHUNKING: the test proves nothing"
submit_file "$(message_file refused1)" -i -f alice@src.example refuse1@exim.test;	ID_R1=$NEWID
submit_file "$(message_file refused2)" -i -f alice@src.example refuse2@exim.test;	ID_R2=$NEWID
submit_file "$(message_file good)" -i -f alice@src.example good@exim.test;		ID_GOOD=$NEWID
pass_once
check_log "$ID_R1" refuse1@exim.test bounced '5\.1\.1' "no such user"
check_log "$ID_R2" refuse2@exim.test bounced '5\.1\.1' "no such user"
check_log "$ID_GOOD" good@exim.test sent '2\.0\.0' "250"
assert_eq 1 "$(maildir_files "$EXIM_MAIN" "^X-Test-Id: good" | grep -c .)" "the good message in Exim's maildir"
assert_eq 0 "$(grep -ci 'protocol error\|synchronization error\|BDAT' "$EXIM_MAIN/log/mainlog")" \
    "protocol errors (or BDAT) in Exim's log"

# ---------------------------------------------------------------- 8BITMIME
section "a server without 8BITMIME gets 7-bit and 8-bit mail"
submit_file "$(message_file seven "plain ascii")" -i -f alice@src.example seven@no8.test;	ID_SEVEN=$NEWID
printf 'From: alice@src.example\nSubject: eight\n\nK\xc3\xb6ln \xe2\x82\xac\n' >"$SRV/eight"
submit_file "$SRV/eight" -i -B8BITMIME -f alice@src.example eight@no8.test;		ID_EIGHT=$NEWID
printf 'From: alice@src.example\nSubject: undeclared\n\nM\xc3\xbcnchen\n' >"$SRV/undecl"
submit_file "$SRV/undecl" -i -f alice@src.example undecl@exim.test;			ID_UNDECL=$NEWID
assert_eq 8bitmime "$(env_get "$ID_UNDECL" body)" "8-bit content is declared 8BITMIME without -B"
pass_once
check_log "$ID_SEVEN" seven@no8.test sent '2\.0\.0' "250"
check_log "$ID_EIGHT" eight@no8.test sent '2\.0\.0' "250"
assert_eq "Köln €" "$(tail -1 "$(maildir_files "$EXIM_NO8" "^Subject: eight")")" "8-bit body as it was"
check_log "$ID_UNDECL" undecl@exim.test sent '2\.0\.0' "250"
assert_eq 1 "$(maildir_files "$EXIM_MAIN" "^Subject: undeclared" | grep -c .)" "undeclared 8-bit message in Exim's maildir"
# log_selector +8bitmime: M8S=8 for BODY=8BITMIME, 0 for none.
assert_match "$(grep "<= alice@src.example .*id=$(hdr "$ID_UNDECL" Message-ID | tr -d '<>')" "$EXIM_MAIN/log/mainlog")" \
    ' M8S=8( |$)' "undeclared 8-bit message went with BODY=8BITMIME"
assert_match "$(grep "<= alice@src.example .*id=$(hdr "$ID_EIGHT" Message-ID | tr -d '<>')" "$EXIM_NO8/log/mainlog")" \
    ' M8S=0( |$)' "8-bit message went to the server without 8BITMIME without BODY="

# ---------------------------------------------------------------- limits
section "452 and 421 are limits: all delivered in one pass"
submit_file "$(message_file many)" -i -f alice@src.example r1@limits.test r2@limits.test \
    r3@limits.test r4@limits.test r5@limits.test;				ID_MANY=$NEWID
for i in 1 2 3 4; do
	submit_file "$(message_file one$i)" -i -f alice@src.example m$i@limits.test
done
pass_once
assert_eq 0 "$(grep -c 'status=deferred' "$LOGFILE")" "deferrals in the log"
assert_eq "r1 r2 r3 r4 r5 m1 m2 m3 m4" "$("$PYTHON" -c "
import json
rs=[r.split('@')[0] for l in open('$SRV/lim.log') for r in json.loads(l)['rcpts']]
print(' '.join(sorted(rs, key=lambda r: (r[0]=='m', r))))")" "recipients the limited server took"
assert_eq 1 "$(pyc "int($(python3 -c "import json;print(max(json.loads(l)['conn'] for l in open('$SRV/lim.log')))") >= 3)")" \
    "connections (421 after 2 messages each)"
assert_queue_empty

finish
