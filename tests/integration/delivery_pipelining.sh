#!/bin/bash
# NAME
#	delivery_pipelining.sh - MAIL, RCPTs and DATA in one write (RFC 2920)
# DESCRIPTION
#	tests/servers/pipesmtp.py records the octets of every read it made
#	on each connection; its sender-keyed replies to MAIL FROM play the
#	refusals. One DNS server, one `queuerun run` pass per section.
#
#	  one write .............. three messages of two recipients each on
#	                           one connection: each MAIL, its RCPTs and
#	                           DATA came in one read, MAIL never alone
#	  multi-line MAIL reply .. "250-" on three lines: delivered
#	  MAIL refused ........... 451 (both recipients deferred) and 550
#	                           (both bounced, and on three lines), each
#	                           with the server's text, "in reply to MAIL
#	                           FROM", no content sent, and the message
#	                           after them on the same connection
#	                           delivered
#	  421 to MAIL ............ deferred with the server's words
#	  STARTTLS ............... the same over TLS (a certificate made
#	                           with openssl now): one read, only the
#	                           second EHLO's PIPELINING counts, a refused
#	                           MAIL taken out of TLS records
#	  no PIPELINING .......... MAIL goes alone, as libESMTP writes it
# SEE ALSO
#	queuerun/pipeline.h, delivery_exim.sh (a real Exim, which pipelines)
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/pipesmtp.py" \
    "$SENDMAIL" "$QUEUERUN"
need_cmd openssl

IP_PLAIN=127.0.0.171
IP_TLS=127.0.0.172
IP_NOPIPE=127.0.0.173

section "start three pipesmtp servers and a DNS server"
cat >"$SRV/zone" <<EOF
src.example	MX 10 mx.plain.test
plain.test	MX 10 mx.plain.test
mx.plain.test	A $IP_PLAIN
tls.test	MX 10 mx.tls.test
mx.tls.test	A $IP_TLS
nopipe.test	MX 10 mx.nopipe.test
mx.nopipe.test	A $IP_NOPIPE
EOF
start_dns "$SRV/zone"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.tls.test \
    -keyout "$SRV/key.pem" -out "$SRV/cert.pem" >"$SRV/openssl.out" 2>&1 \
    && pass || fail "openssl could not make a certificate" "$(cat "$SRV/openssl.out")"
# start_pipesmtp NAME ADDRESS PORT ARG...
start_pipesmtp() {
	local name=$1 addr=$2 port=$3
	shift 3
	"$PYTHON" "$SERVERS/pipesmtp.py" --address "$addr" --port "$port" \
	    --port-file "$SRV/$name.port" --log "$SRV/$name.log" \
	    --watch-pid $$ "$@" >"$SRV/$name.out" 2>&1 &
	track_pid $!
	wait_for 20 test -s "$SRV/$name.port" && pass || \
	    fail "pipesmtp $name did not start" "$(cat "$SRV/$name.out")"
}
P=$((32000 + RANDOM % 8000))
start_pipesmtp plain $IP_PLAIN $P
start_pipesmtp tls $IP_TLS $P --tls-cert "$SRV/cert.pem" --tls-key "$SRV/key.pem"
start_pipesmtp nopipe $IP_NOPIPE $P --no-pipelining

setup pipelining \
    "resolver = \"127.0.0.1:$DNS_PORT\"" \
    "smtp_port = $P" \
    "immediate_delivery = false"

pass_once() { assert_exit 0 timeout -k 5 120 "$QUEUERUN" run --flush; }

# reads LOG EXPR: Python over the server's reads (R: a list of (conn, tls,
# octets)) and messages (M: a list of (conn, message)).
reads() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import json, re, sys
R, M = [], []
for l in open(sys.argv[1]):
    j = json.loads(l)
    if "read" in j:
        R.append((j["conn"], j["tls"], j["read"]))
    else:
        M.append((j["conn"], j["message"]))
# The reads holding a MAIL FROM: what else came with it.
def mail_reads(sender):
    return [r for c, t, r in R if re.search("(^|\n)MAIL FROM:<%s>" % re.escape(sender), r)]
def batch(sender, n):
    """MAIL, n RCPTs and DATA, exactly, in one read."""
    want = "MAIL FROM:<%s>[^\r\n]*\r\n(RCPT TO:<[^>]*>[^\r\n]*\r\n){%d}DATA\r\n$" % (re.escape(sender), n)
    rs = mail_reads(sender)
    return len(rs) == 1 and re.search("(^|\n)" + want, rs[0]) is not None
print(eval(sys.argv[2]))
EOF
}

# ---------------------------------------------------------------- one write
section "three messages on one connection, each MAIL with its RCPTs and DATA"
for i in 1 2 3; do
	submit_file "$(message_file ok$i)" -i -f ok$i@src.example a$i@plain.test b$i@plain.test
	eval "ID_OK$i=\$NEWID"
done
submit_file "$(message_file multi)" -i -f multi@src.example m@plain.test;	ID_MULTI=$NEWID
pass_once
for i in 1 2 3; do
	eval "id=\$ID_OK$i"
	check_log "$id" a$i@plain.test sent '2\.0\.0' "250"
	check_log "$id" b$i@plain.test sent '2\.0\.0' "250"
	assert_eq True "$(reads "$SRV/plain.log" "batch('ok$i@src.example', 2)")" \
	    "MAIL FROM:<ok$i@src.example>, two RCPTs and DATA in one read"
done
check_log "$ID_MULTI" m@plain.test sent '2\.0\.0' "250"
assert_eq True "$(reads "$SRV/plain.log" "batch('multi@src.example', 1)")" \
    "MAIL whose reply has three lines went with its RCPT and DATA"
assert_eq 4 "$(reads "$SRV/plain.log" "len(M)")" "messages the server took"
assert_eq 1 "$(reads "$SRV/plain.log" "len(set(c for c, m in M))")" "connections they took"
assert_eq 0 "$(reads "$SRV/plain.log" "sum(1 for c, t, r in R if re.fullmatch('MAIL FROM:[^\n]*\r\n', r))")" \
    "reads holding a MAIL FROM alone"
assert_queue_empty

# ---------------------------------------------------------------- refused
section "MAIL refused with 451 and 550, then a good message, one connection"
: >"$SRV/plain.log"
submit_file "$(message_file r451)" -i -f refuse451@src.example x1@plain.test y1@plain.test;	ID_451=$NEWID
submit_file "$(message_file r550)" -i -f refuse550@src.example x2@plain.test y2@plain.test;	ID_550=$NEWID
submit_file "$(message_file m550)" -i -f multi550@src.example x3@plain.test;		ID_M550=$NEWID
submit_file "$(message_file after)" -i -f after@src.example z@plain.test;		ID_AFTER=$NEWID
pass_once
for a in x1 y1; do
	check_log "$ID_451" $a@plain.test deferred '4\.7\.1' \
	    "said: 451 4.7.1 Greylisted by pipesmtp, try again later (in reply to MAIL FROM command)"
done
check_rcpt "$ID_451" x1@plain.test queued 1
for a in x2 y2; do
	check_log "$ID_550" $a@plain.test bounced '5\.7\.1' \
	    "said: 550 5.7.1 Sender refused by pipesmtp policy (in reply to MAIL FROM command)"
done
check_log "$ID_M550" x3@plain.test bounced '5\.7\.1' "and the third"
check_log "$ID_AFTER" z@plain.test sent '2\.0\.0' "250"
for s in refuse451 refuse550 multi550 after; do
	assert_eq True "$(reads "$SRV/plain.log" "len(mail_reads('$s@src.example')) == 1")" \
	    "MAIL FROM:<$s@src.example> sent once"
done
assert_eq True "$(reads "$SRV/plain.log" "batch('refuse451@src.example', 2)")" \
    "the refused MAIL went with its RCPTs and DATA too"
# (the bounces, from <>, quote the 550 ones: only the deferred one counts)
assert_eq 0 "$(reads "$SRV/plain.log" "sum(r.count('X-Test-Id: r451') for c, t, r in R)")" \
    "content of the refused message sent"
assert_eq "after@src.example" "$(reads "$SRV/plain.log" "' '.join(m['from'] for c, m in M if m['from'])")" \
    "messages the server took (bounces aside)"
# The bounces go to src.example, which is the same server: accepted.
assert_eq 0 "$(grep -c 'pipelining:' "$LOGFILE")" "pipelining abandoned"

# ---------------------------------------------------------------- 421
section "421 to MAIL: deferred with the server's words"
: >"$SRV/plain.log"
submit_file "$(message_file r421)" -i -f close421@src.example q@plain.test;	ID_421=$NEWID
pass_once
check_log "$ID_421" q@plain.test deferred '4\.3\.2' "421 4.3.2 Service shutting down"
check_rcpt "$ID_421" q@plain.test queued 1

# ---------------------------------------------------------------- STARTTLS
section "STARTTLS: one write inside TLS, a refusal taken out of TLS records"
submit_file "$(message_file tls1)" -i -f tls1@src.example t1@tls.test t2@tls.test;	ID_TLS1=$NEWID
submit_file "$(message_file tls550)" -i -f refuse550@src.example t3@tls.test;		ID_TLS550=$NEWID
submit_file "$(message_file tls2)" -i -f multi@src.example t4@tls.test;		ID_TLS2=$NEWID
pass_once
grep -q "Untrusted TLS connection established to mx.tls.test" "$LOGFILE" && pass || \
    fail "no TLS with mx.tls.test" "$(tail -5 "$LOGFILE")"
check_log "$ID_TLS1" t1@tls.test sent '2\.0\.0' "250"
check_log "$ID_TLS1" t2@tls.test sent '2\.0\.0' "250"
check_log "$ID_TLS550" t3@tls.test bounced '5\.7\.1' "Sender refused by pipesmtp policy"
check_log "$ID_TLS2" t4@tls.test sent '2\.0\.0' "250"
assert_eq True "$(reads "$SRV/tls.log" "batch('tls1@src.example', 2)")" \
    "MAIL, two RCPTs and DATA in one read over TLS"
assert_eq True "$(reads "$SRV/tls.log" "all(t for c, t, r in R if 'MAIL FROM' in r)")" \
    "every MAIL FROM came over TLS"
assert_eq "tls1@src.example multi@src.example" "$(reads "$SRV/tls.log" "' '.join(m['from'] for c, m in M)")" \
    "messages the TLS server took"

# ---------------------------------------------------------------- off
section "no PIPELINING offered: MAIL goes alone"
submit_file "$(message_file np)" -i -f np@src.example n1@nopipe.test n2@nopipe.test;	ID_NP=$NEWID
pass_once
check_log "$ID_NP" n1@nopipe.test sent '2\.0\.0' "250"
assert_eq True "$(reads "$SRV/nopipe.log" "len(mail_reads('np@src.example')) == 1 and re.fullmatch('MAIL FROM:[^\\n]*\\r\\n', mail_reads('np@src.example')[0]) is not None")" \
    "MAIL FROM read alone"

assert_eq 0 "$(grep -c 'pipelining:' "$LOGFILE")" "pipelining abandoned"
finish
