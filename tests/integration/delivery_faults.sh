#!/bin/bash
# NAME
#	delivery_faults.sh - queuerun against every SMTP fault a real MX plays
# DESCRIPTION
#	One test MX (tests/servers/smtpsink.py) with a listener per fault on
#	127.0.0.120-137 (one random high port, the configured smtp_port) and
#	one DNS server (tests/servers/dnsserver.py) giving each case its own
#	domain. One message per case is queued (immediate_delivery off), one
#	`queuerun run` pass delivers, a second pass delivers the bounces to
#	the sender's domain, whose MX is a plain listener that keeps every
#	message. Each case is then checked per recipient: the state and the
#	attempt count from `queuerun show` (or exit 66 once the message is
#	gone), the one smtp log line (status, dsn, reason), what the sink
#	recorded, and for bounces the DSN parsed by dsncheck.py (action,
#	status, diagnostic, final recipient, Remote-MTA).
#
#	  connection refused ............ deferred 4.x.x, attempts 1
#	  421 greeting .................. deferred, reason quotes the 421
#	  554 greeting (only host) ...... bounced 5.x.x, DSN
#	  451 to MAIL FROM .............. deferred 4.3.0
#	  550 to MAIL FROM .............. bounced 5.1.1, DSN
#	  250/450/550 to three RCPTs .... sent / deferred 4.2.1 / bounced 5.1.1
#	                                  in one transaction; the DSN for the
#	                                  550 comes after the pass, not when
#	                                  the 450 finally ends
#	  451 after DATA ................ deferred 4.3.0
#	  554 after DATA ................ bounced 5.7.1, DSN
#	  connection dropped mid-DATA ... deferred, and NOT retried on the
#	                                  second MX (it may have arrived)
#	  1.3 s before every reply ...... sent: slow, but inside every
#	                                  configured time-out (2 s and up)
#	  stall at greeting / after dot . deferred once smtp_helo_timeout /
#	                                  smtp_data_done_timeout (2 s) pass
#	  STARTTLS, self-signed cert .... sent, "Untrusted TLS connection
#	                                  established" logged, sink tls=true
#	  first MX refuses, second up ... sent via the second MX
#
#	Then what goes on the wire: the DSN parameters of `sendmail -N -R -V`
#	and of -bs (NOTIFY, ORCPT as xtext, RET, ENVID) reach a sink that
#	offers DSN and are left out for one that does not (nodsn: the
#	message still goes through); a 3000-octet line never goes out as it
#	is (long_lines 0) yet every octet arrives; an 8-bit body submitted
#	with -B 8BITMIME arrives byte-exact (sha256 of the body) with
#	BODY=8BITMIME.
#
#	Takes about 25 seconds (the slow MX costs 10 s, the two stalls 2 s
#	each).
# SEE ALSO
#	delivery_queue.sh, tests/servers/smtpsink.py, tests/servers/dsncheck.py
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SERVERS/dsncheck.py" "$SENDMAIL" "$QUEUERUN"
need_cmd openssl sha256sum

# ---------------------------------------------------------------- servers

section "start a DNS server and one sink with a listener per fault"
IP_BOUNCE=127.0.0.120	# MX of src.example: catches the bounces
IP_REFUSE=127.0.0.121
IP_G421=127.0.0.122
IP_G554=127.0.0.123
IP_M451=127.0.0.124
IP_M550=127.0.0.125
IP_OK=127.0.0.126
IP_D451=127.0.0.127
IP_D554=127.0.0.128
IP_DROP=127.0.0.129
IP_DROP2=127.0.0.130
IP_STALLG=127.0.0.131
IP_STALLD=127.0.0.132
IP_TLS=127.0.0.133
IP_DOWN=127.0.0.134
IP_UP=127.0.0.135
IP_DSN=127.0.0.136
IP_NODSN=127.0.0.137
IP_SLOW=127.0.0.138	# answers every command after 1.3 s

cat >"$SRV/zone" <<EOF
src.example	MX 10 mx.src.example
mx.src.example	A $IP_BOUNCE
refused.test	MX 10 mx.refused.test
mx.refused.test	A $IP_REFUSE
greet421.test	MX 10 mx.greet421.test
mx.greet421.test A $IP_G421
greet554.test	MX 10 mx.greet554.test
mx.greet554.test A $IP_G554
mail451.test	MX 10 mx.mail451.test
mx.mail451.test	A $IP_M451
mail550.test	MX 10 mx.mail550.test
mx.mail550.test	A $IP_M550
ok.test		MX 10 mx.ok.test
mx.ok.test	A $IP_OK
data451.test	MX 10 mx.data451.test
mx.data451.test	A $IP_D451
data554.test	MX 10 mx.data554.test
mx.data554.test	A $IP_D554
drop.test	MX 10 mx1.drop.test
drop.test	MX 20 mx2.drop.test
mx1.drop.test	A $IP_DROP
mx2.drop.test	A $IP_DROP2
stallgreet.test	MX 10 mx.stallgreet.test
mx.stallgreet.test A $IP_STALLG
stalldata.test	MX 10 mx.stalldata.test
mx.stalldata.test A $IP_STALLD
tls.test	MX 10 mx.tls.test
mx.tls.test	A $IP_TLS
failover.test	MX 10 mx1.failover.test
failover.test	MX 20 mx2.failover.test
mx1.failover.test A $IP_DOWN
mx2.failover.test A $IP_UP
dsn.test	MX 10 mx.dsn.test
mx.dsn.test	A $IP_DSN
nodsn.test	MX 10 mx.nodsn.test
mx.nodsn.test	A $IP_NODSN
slow.test	MX 10 mx.slow.test
mx.slow.test	A $IP_SLOW
EOF
start_dns "$SRV/zone"
start_sink sink \
    --listen $IP_BOUNCE:@P@ \
    --listen $IP_REFUSE:@P@=refuse \
    --listen $IP_G421:@P@=greet421 \
    --listen $IP_G554:@P@=greet554 \
    --listen $IP_M451:@P@=mail451 \
    --listen $IP_M550:@P@=mail550 \
    --listen $IP_OK:@P@ \
    --listen $IP_D451:@P@=data451 \
    --listen $IP_D554:@P@=data554 \
    --listen $IP_DROP:@P@=dropdata \
    --listen $IP_DROP2:@P@ \
    --listen $IP_STALLG:@P@=stallgreet \
    --listen $IP_STALLD:@P@=stalldata \
    --listen $IP_TLS:@P@=starttls \
    --listen $IP_DOWN:@P@=refuse \
    --listen $IP_UP:@P@ \
    --listen $IP_DSN:@P@=dsn \
    --listen $IP_NODSN:@P@=nodsn \
    --listen $IP_SLOW:@P@=delay1300 \
    --dropdata-bytes 200 --save-dir "$SRV/saved" --stall-seconds 30 \
    --max-lifetime 600
P=$PORT

setup faults \
    "resolver = \"127.0.0.1:$DNS_PORT\"" \
    "smtp_port = $P" \
    "immediate_delivery = false" \
    "smtp_connect_timeout = \"3s\"" \
    "smtp_helo_timeout = \"5s\"" \
    "smtp_mail_timeout = \"5s\"" \
    "smtp_data_init_timeout = \"5s\"" \
    "smtp_data_xfer_timeout = \"5s\"" \
    "smtp_data_done_timeout = \"2s\"" \
    "minimal_backoff_time = \"5m\"" \
    "maximal_backoff_time = \"1h\""
say "sink on port $P, DNS on 127.0.0.1:$DNS_PORT"

# ---------------------------------------------------------------- queue

section "queue one message per fault"
S=(-i -f alice@src.example)
submit_file "$(message_file refused)" "${S[@]}" rcpt@refused.test;		ID_REFUSED=$NEWID
submit_file "$(message_file g421)" "${S[@]}" rcpt@greet421.test;		ID_G421=$NEWID
submit_file "$(message_file g554)" "${S[@]}" rcpt@greet554.test;		ID_G554=$NEWID
submit_file "$(message_file m451)" "${S[@]}" rcpt@mail451.test;		ID_M451=$NEWID
submit_file "$(message_file m550)" "${S[@]}" rcpt@mail550.test;		ID_M550=$NEWID
submit_file "$(message_file mixed)" "${S[@]}" a@ok.test r450-b@ok.test r550-c@ok.test; ID_MIX=$NEWID
submit_file "$(message_file d451)" "${S[@]}" rcpt@data451.test;		ID_D451=$NEWID
submit_file "$(message_file d554)" "${S[@]}" rcpt@data554.test;		ID_D554=$NEWID
# dropdata cuts after 200 octets: make the content longer than that
submit_file "$(message_file drop "$(seq -f 'line %g of a message that is cut in the middle of DATA' 1 40)")" \
    "${S[@]}" rcpt@drop.test;						ID_DROP=$NEWID
submit_file "$(message_file stallg)" "${S[@]}" rcpt@stallgreet.test;	ID_STALLG=$NEWID
submit_file "$(message_file stalld)" "${S[@]}" rcpt@stalldata.test;	ID_STALLD=$NEWID
submit_file "$(message_file tls)" "${S[@]}" rcpt@tls.test;			ID_TLS=$NEWID
submit_file "$(message_file failover)" "${S[@]}" rcpt@failover.test;	ID_FAIL=$NEWID
submit_file "$(message_file slow)" "${S[@]}" rcpt@slow.test;		ID_SLOW=$NEWID

# DSN parameters: from the command line, and from -bs
submit_file "$(message_file dsncl)" "${S[@]}" -N success,failure -R hdrs -V env123 cl@dsn.test; ID_DSNCL=$NEWID
submit_file "$(message_file nodsncl)" "${S[@]}" -N success,failure -R hdrs -V env123 cl@nodsn.test; ID_NODSNCL=$NEWID
# bs_dialogue DOMAIN TESTID: an SMTP submission with every DSN parameter
bs_dialogue() {
	printf 'EHLO client.example\r\n'
	printf 'MAIL FROM:<alice@src.example> RET=FULL ENVID=bs+2Benv+3D1\r\n'
	printf 'RCPT TO:<bs1@%s> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;orig+2Btag@example.net\r\n' "$1"
	printf 'RCPT TO:<bs2@%s> NOTIFY=NEVER\r\n' "$1"
	printf 'DATA\r\nSubject: bs\r\nX-Test-Id: %s\r\n\r\nvia -bs\r\n.\r\nQUIT\r\n' "$2"
}
bs_dialogue dsn.test dsnbs >"$SRV/bs1"
submit_file "$SRV/bs1" -bs;	ID_DSNBS=$NEWID
assert_match "$(last_out)" '250[ -].*DSN' "sendmail -bs offers DSN"
assert_eq 0 "$(grep -c '^5' "$OUT")" "5xx replies in the -bs dialogue"
bs_dialogue nodsn.test nodsnbs >"$SRV/bs2"
submit_file "$SRV/bs2" -bs;	ID_NODSNBS=$NEWID

# A 3000-octet body line and a 1500-octet header line.
LONG=$(head -c 3000 /dev/zero | tr '\0' 'x')
{
	printf 'From: alice@src.example\nSubject: long\nX-Test-Id: long\n'
	printf 'X-Long: %s\n' "$(head -c 1500 /dev/zero | tr '\0' 'h')"
	printf '\nbefore\n%s\nafter\n' "$LONG"
} >"$SRV/msg.long"
submit_file "$SRV/msg.long" "${S[@]}" long@ok.test;	ID_LONG=$NEWID

# An 8-bit body: every octet 0x80-0xff plus UTF-8 text, LF line ends.
{
	printf 'From: alice@src.example\nSubject: 8bit\nX-Test-Id: eight\n'
	printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\n'
	printf 'Content-Transfer-Encoding: 8bit\n\n'
	printf 'Gr\303\274\303\237e aus K\303\266ln\n'
	"$PYTHON" -c 'import sys
b = bytes(range(0x80, 0x100))
for i in range(0, len(b), 32):
    sys.stdout.buffer.write(b[i:i + 32] + b"\n")'
	printf 'end\n'
} >"$SRV/msg.eight"
submit_file "$SRV/msg.eight" "${S[@]}" -B 8BITMIME eight@ok.test;	ID_EIGHT=$NEWID
# What the body must be on arrival: the same octets with CRLF line ends.
sed '1,/^$/d' "$SRV/msg.eight" | sed 's/$/\r/' >"$SRV/eight.body"

assert_queue_count 20 "messages queued before the pass"
assert_eq 0 "$(sinkq 'len(R)')" "sink records before the pass (immediate_delivery = false)"

# ---------------------------------------------------------------- the pass

section "one queue run"
t0=$(date +%s.%N)
assert_exit 0 "$QUEUERUN" run
t1=$(date +%s.%N)
secs=$("$PYTHON" -c "print(round($t1 - $t0, 2))")
say "first pass took $secs s"
assert_match "$("$PYTHON" -c "print(int($t1 - $t0 < 60))")" '^1$' "first pass under 60 s"
# A second pass delivers the bounces queued by the first (the deferred
# recipients are not due for 5 minutes).
assert_exit 0 "$QUEUERUN" run
wait_for 10 sh -c "! grep -q '\"sessions_active\": [1-9]' '$SINK_STATS'"
dsn_table
say "DSNs received:"
sed 's/^/    /' "$SRV/dsn.tsv"
assert_eq 0 "$(grep -c '^INVALID' "$SRV/dsn.tsv")" "DSNs that dsncheck.py rejects"
# (each check_dsn below looks at failure DSNs: there must be no others)
assert_eq 0 "$(awk -F'\t' '$2 != "failed"' "$SRV/dsn.tsv" | grep -c .)" "DSN blocks not of kind failed"

# ---------------------------------------------------------------- cases

section "connection refused"
check_rcpt "$ID_REFUSED" rcpt@refused.test queued 1
check_log "$ID_REFUSED" rcpt@refused.test deferred '4\.[0-9]+\.[0-9]+' "Connection refused"
assert_contains "$(rcpt_get "$ID_REFUSED" rcpt@refused.test last_response)" "Connection refused" "last_response"

section "421 greeting"
check_rcpt "$ID_G421" rcpt@greet421.test queued 1
check_log "$ID_G421" rcpt@greet421.test deferred '4\.3\.2' "421 4.3.2"
assert_eq 1 "$(sinkq 'len(sess("'$IP_G421'"))')" "sessions on the 421 listener"

section "554 greeting on the only MX"
check_log "$ID_G554" rcpt@greet554.test bounced '5\.[0-9]+\.[0-9]+' "554 5.7.1"
check_gone "$ID_G554"
check_dsn "$ID_G554" failed rcpt@greet554.test failed '^5\.[0-9]+\.[0-9]+$' "554 5.7.1" mx.greet554.test

section "451 to MAIL FROM"
check_rcpt "$ID_M451" rcpt@mail451.test queued 1
check_log "$ID_M451" rcpt@mail451.test deferred '4\.3\.0' "451 4.3.0"
assert_contains "$(rcpt_get "$ID_M451" rcpt@mail451.test last_response)" "in reply to MAIL FROM command" "last_response"
assert_eq 1 "$(sinkq 'len([r for r in of("mail_rejected") if r["listener"].startswith("'$IP_M451':")])')" "MAIL FROM attempts on the mail451 listener"

section "550 to MAIL FROM"
check_log "$ID_M550" rcpt@mail550.test bounced '5\.1\.1' "550 5.1.1"
check_gone "$ID_M550"
check_dsn "$ID_M550" failed rcpt@mail550.test failed '^5\.1\.1$' "550 5.1.1" mx.mail550.test

section "250, 450 and 550 to three RCPTs in one transaction"
check_rcpt "$ID_MIX" a@ok.test sent 1
check_rcpt "$ID_MIX" r450-b@ok.test queued 1
check_rcpt "$ID_MIX" r550-c@ok.test bounced 1
check_log "$ID_MIX" a@ok.test sent '2\.0\.0' "250 2.0.0 Ok: queued as"
check_log "$ID_MIX" r450-b@ok.test deferred '4\.2\.1' "450 4.2.1"
check_log "$ID_MIX" r550-c@ok.test bounced '5\.1\.1' "550 5.1.1"
assert_eq '1 ["a@ok.test"]' "$(sinkq 'str(len(tid("mixed"))) + " " + json.dumps(tid("mixed")[0]["rcpt_tos"])')" \
    "one transaction, only a@ok.test accepted"
assert_eq 2 "$(sinkq 'len(tid("mixed")[0]["rcpts_rejected"])')" "recipients the sink refused in that transaction"
# Postfix (and sendmail) tell the sender about a hard failure at the end
# of the attempt that found it; waiting until the 450 recipient ends too
# would hold the bounce for up to maximal_queue_lifetime.
check_dsn "$ID_MIX" failed r550-c@ok.test failed '^5\.1\.1$' "550 5.1.1" mx.ok.test
assert_eq 0 "$(awk -F'\t' -v id="$ID_MIX" '$1 == id && $4 != "r550-c@ok.test"' "$SRV/dsn.tsv" | grep -c .)" \
    "DSN blocks for the other recipients of the mixed message"

section "451 after DATA"
check_rcpt "$ID_D451" rcpt@data451.test queued 1
check_log "$ID_D451" rcpt@data451.test deferred '4\.3\.0' "451 4.3.0"
assert_eq 0 "$(sinkq 'len(tid("d451"))')" "messages accepted by the data451 listener"

section "554 after DATA"
check_log "$ID_D554" rcpt@data554.test bounced '5\.7\.1' "554 5.7.1"
check_gone "$ID_D554"
check_dsn "$ID_D554" failed rcpt@data554.test failed '^5\.7\.1$' "554 5.7.1" mx.data554.test

section "connection dropped in the middle of DATA"
check_rcpt "$ID_DROP" rcpt@drop.test queued 1
check_log "$ID_DROP" rcpt@drop.test deferred '4\.[0-9]+\.[0-9]+' "mx1.drop.test"
assert_eq 1 "$(sinkq 'len(of("dropped"))')" "transactions the sink dropped"
assert_eq "0 0" "$(sinkq 'str(len(tid("drop"))) + " " + str(len(sess("'$IP_DROP2'")))')" \
    "deliveries and sessions on the second MX after a drop in DATA (must not resend)"

section "a slow server inside the time-outs"
# Every reply comes after 1.3 s, under each configured time-out (2 s at
# least): the message must go through.
check_log "$ID_SLOW" rcpt@slow.test sent '2\.0\.0' "250 2.0.0"
check_gone "$ID_SLOW"
assert_eq 1 "$(sinkq 'len(tid("slow"))')" "messages the slow listener accepted"

section "a server that stalls past the time-out"
check_rcpt "$ID_STALLG" rcpt@stallgreet.test queued 1
check_log "$ID_STALLG" rcpt@stallgreet.test deferred '4\.[0-9]+\.[0-9]+' "mx.stallgreet.test"
check_rcpt "$ID_STALLD" rcpt@stalldata.test queued 1
check_log "$ID_STALLD" rcpt@stalldata.test deferred '4\.[0-9]+\.[0-9]+' "mx.stalldata.test"
assert_eq 1 "$(sinkq 'len([r for r in of("stalled") if r["stage"] == "data"])')" "the sink stalled after the dot once"
# Each stall costs about its time-out (2 s or 5 s), not the sink's 30 s.
# (The greeting time-out is 5 s: a TLS handshake with the Python test
# MX can take seconds on a loaded machine.)
assert_eq "stallgreet stalldata" \
    "$(sinkq '" ".join(sess(ip)[0]["end_reason"] for ip in ("'$IP_STALLG'", "'$IP_STALLD'"))')" \
    "end of the stalled sessions"
for ip in $IP_STALLG $IP_STALLD; do
	d=$(sinkq 'round(sess("'$ip'")[0]["end"] - sess("'$ip'")[0]["start"], 1)')
	say "stalled session on $ip lasted $d s"
	assert_match "$("$PYTHON" -c "print(int(1.5 <= $d < 15))")" '^1$' \
	    "stalled session on $ip closed by the client after its time-out ($d s)"
done

section "STARTTLS with a self-signed certificate"
check_log "$ID_TLS" rcpt@tls.test sent '2\.0\.0' "250 2.0.0"
check_gone "$ID_TLS"
assert_match "$(grep -F 'Untrusted TLS connection established to mx.tls.test' "$LOGFILE")" \
    "mxlane/smtp\[[0-9]+\]: Untrusted TLS connection established to mx\.tls\.test\[$IP_TLS\]:$P: TLSv1\.[23] with cipher [A-Za-z0-9_-]+" \
    "TLS log line"
assert_eq "True" "$(sinkq 'tid("tls")[0]["tls"]')" "the sink saw the message over TLS"

section "first MX refuses, second MX delivers"
check_log "$ID_FAIL" rcpt@failover.test sent '2\.0\.0' "relay=mx2.failover.test[$IP_UP]:$P"
check_gone "$ID_FAIL"
assert_eq "$IP_UP" "$(sinkq 'tid("failover")[0]["listener"].split(":")[0]')" "listener that got the failover message"

section "DSN parameters passed on when the server offers DSN"
check_log "$ID_DSNCL" cl@dsn.test sent '2\.0\.0' "250 2.0.0"
assert_eq 'HDRS env123 ["SUCCESS,FAILURE"]' \
    "$(sinkq '" ".join([str(tid("dsncl")[0]["ret"]), str(tid("dsncl")[0]["envid_decoded"]), json.dumps(tid("dsncl")[0]["notify"])])')" \
    "RET, ENVID, NOTIFY from sendmail -R hdrs -V env123 -N success,failure"
assert_eq 'FULL bs+env=1 ["SUCCESS,DELAY", "NEVER"] ["rfc822;orig+2Btag@example.net", null]' \
    "$(sinkq '" ".join([str(tid("dsnbs")[0]["ret"]), str(tid("dsnbs")[0]["envid_decoded"]), json.dumps(tid("dsnbs")[0]["notify"]), json.dumps(tid("dsnbs")[0]["orcpt"])])')" \
    "RET, ENVID (xtext), NOTIFY, ORCPT (xtext) from -bs"
assert_eq '["bs1@dsn.test", "bs2@dsn.test"]' "$(sinkq 'json.dumps(tid("dsnbs")[0]["rcpt_tos"])')" "-bs recipients"

section "DSN parameters left out when the server does not offer DSN"
assert_eq "1 None None [null] [null]" \
    "$(sinkq '" ".join([str(len(tid("nodsncl"))), str(tid("nodsncl")[0]["ret"]), str(tid("nodsncl")[0]["envid"]), json.dumps(tid("nodsncl")[0]["notify"]), json.dumps(tid("nodsncl")[0]["orcpt"])])')" \
    "delivered to the nodsn listener without RET, ENVID, NOTIFY, ORCPT"
assert_eq '1 ["bs1@nodsn.test", "bs2@nodsn.test"] [null, null] [null, null]' \
    "$(sinkq '" ".join([str(len(tid("nodsnbs"))), json.dumps(tid("nodsnbs")[0]["rcpt_tos"]), json.dumps(tid("nodsnbs")[0]["notify"]), json.dumps(tid("nodsnbs")[0]["orcpt"])])')" \
    "-bs message delivered to the nodsn listener without DSN parameters"
assert_eq 0 "$(sinkq 'len([r for r in of("error") if r["listener"].startswith("'$IP_NODSN':")])')" \
    "protocol errors (555) on the nodsn listener"
check_gone "$ID_NODSNCL"
check_gone "$ID_NODSNBS"

section "lines longer than 998 octets never on the wire"
check_log "$ID_LONG" long@ok.test sent '2\.0\.0' "250 2.0.0"
assert_eq "1 0" "$(sinkq 'str(len(tid("long"))) + " " + str(tid("long")[0]["long_lines"])')" \
    "long message arrived, with no line over 998 octets"
assert_match "$(sinkq 'tid("long")[0]["max_line"]')" '^([0-9]{1,2}|[1-8][0-9]{2}|9[0-8][0-9]|99[0-8])$' "longest line on the wire"
# Every octet of the long body line arrives, in order, only broken up.
assert_eq "before${LONG}after" "$(sinkq 'body(tid("long")[0]).replace(b"\r\n", b"").decode()')" \
    "the long body line, line breaks removed"
assert_eq 1500 "$(sinkq '[l for l in open(tid("long")[0]["file"], "rb").read().split(b"\r\n\r\n")[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t").split(b"\r\n") if l.startswith(b"X-Long:")][0].count(b"h")')" \
    "octets of the 1500-octet header that arrived"

section "8-bit body arrives byte-exact with BODY=8BITMIME"
check_log "$ID_EIGHT" eight@ok.test sent '2\.0\.0' "250 2.0.0"
assert_eq "8BITMIME True" "$(sinkq 'str(tid("eight")[0]["body"]) + " " + str(tid("eight")[0]["eightbit"])')" \
    "BODY parameter and 8-bit content at the sink"
assert_eq "$(sha256sum <"$SRV/eight.body" | cut -d' ' -f1)" \
    "$(sinkq '__import__("hashlib").sha256(body(tid("eight")[0])).hexdigest()')" "sha256 of the 8-bit body"

section "nothing unexpected"
# A pipelining client sends RCPT and DATA with MAIL FROM (RFC 2920), so
# a refused MAIL draws "need MAIL" to them: expected, and only there.
assert_eq 0 "$(sinkq 'len([e for e in of("error") if "need MAIL" not in e["reply"]])')" \
    "protocol errors the sink logged"
assert_eq "1 1" "$(sinkq '" ".join(str(len([e for e in of("error") if e["command"] == "RCPT TO:<rcpt@%s>" % d])) for d in ("mail451.test", "mail550.test"))')" \
    "RCPTs the sink answered \"need MAIL\" (sent with the refused MAILs)"
assert_eq 0 "$(sinkq 'len([e for e in of("error") if e["command"].startswith("RCPT") and not e["command"].endswith(("@mail451.test>", "@mail550.test>"))])')" \
    "other RCPTs answered \"need MAIL\""
assert_no_traceback
# Still queued: refused, 421, MAIL 451, the 450 recipient, DATA 451,
# the dropped one, the two stalls.
assert_eq "$(printf '%s\n' "$ID_REFUSED" "$ID_G421" "$ID_M451" "$ID_MIX" "$ID_D451" \
    "$ID_DROP" "$ID_STALLG" "$ID_STALLD" | sort)" "$(queue_ids | sort)" "messages left in the queue"
assert_eq 0 "$(grep -c 'state: active' <(for i in $(queue_ids); do show "$i"; done))" \
    "recipients left active after the runs"

finish
