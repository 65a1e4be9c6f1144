#!/bin/bash
# NAME
#	delivery_ipv6.sh - AAAA records, IPv6 sources, smtp_address_preference
# DESCRIPTION
#	One test DNS server (A and AAAA records) and one sink listening on
#	[::1], 127.0.0.181 and 127.0.0.182 (one port). Source pools: "both"
#	(::1 and 127.0.0.191, the default), "six" (::1 only), "four"
#	(127.0.0.191 only). mx.dual.test has an A (127.0.0.181) and an AAAA
#	(::1) record. Asserts:
#	  - route shows both families, in the order of smtp_address_preference,
#	    the source of each family, and the addresses a pool cannot send
#	    to as not tried;
#	  - with ipv6 first: mail to dual.test, to a domain whose MX has only
#	    an AAAA record, to an implicit MX with only an AAAA record, and to
#	    user@[IPv6:::1] arrives at [::1] from the source ::1 with its helo;
#	  - with ipv4 first: dual.test arrives at 127.0.0.181 from 127.0.0.191;
#	  - with ipv6 first and the IPv6 address greeting 421, the IPv4 address
#	    is tried next, from the pool's IPv4 source with its helo;
#	  - an IPv6-only pool sends to dual.test over IPv6 even with ipv4
#	    first, an IPv4-only pool over IPv4 even with ipv6 first; a
#	    destination with no address of the pool's family is deferred, with
#	    the reason, and nothing is sent;
#	  - with any (the default), route shows either family first, at random.
# SEE ALSO
#	routing_sources.sh, queuerun(8) "IPv6"
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN"

section "DNS with AAAA records, a sink on [::1] and 127.0.0.181-182"
cat >"$SRV/zone" <<EOF
dual.test	MX 10 mx.dual.test
dual6p.test	MX 10 mx.dual.test
dual4p.test	MX 10 mx.dual.test
mx.dual.test	A 127.0.0.181
mx.dual.test	AAAA ::1
v6.test		MX 10 mx.v6.test
v6in4p.test	MX 10 mx.v6.test
mx.v6.test	AAAA ::1
implicit6.test	AAAA ::1
v4in6p.test	MX 10 mx.v4only.test
mx.v4only.test	A 127.0.0.182
mx.half.test	A 127.0.0.183
mx.half.test	AAAA ::1
EOF
start_dns "$SRV/zone"
# A second sink, for the fallback: its [::1] greets with 421.
start_sink half --listen "[::1]:@P@=greet421" --listen 127.0.0.183:@P@
HALF_PORT=$PORT
HALF_LOG=$SINKLOG
start_sink sink --listen "[::1]:@P@" --listen 127.0.0.181:@P@ --listen 127.0.0.182:@P@

# world PREFERENCE: a fresh spool and configuration
world() {
	setup "ipv6-$1" \
	    "resolver = \"127.0.0.1:$DNS_PORT\"" \
	    "smtp_port = $PORT" \
	    "immediate_delivery = false" \
	    "smtp_address_preference = $1" \
	    'pool default {
	       source "::1" { helo = "six.example.org" }
	       source "127.0.0.191" { helo = "four.example.org" } }' \
	    'pool six { source "::1" { helo = "only6.example.org" } }' \
	    'pool four { source "127.0.0.191" { helo = "only4.example.org" } }' \
	    'provider p6 { domains = { "dual6p.test", "v4in6p.test" } pool = "six" }' \
	    'provider p4 { domains = { "dual4p.test", "v6in4p.test" } pool = "four" }' \
	    "provider half { domains = { \"half.test\" } relay = \"mx.half.test:$HALF_PORT\" }"
}

# arrived TESTID: "listener peer helo" of the one message with TESTID
arrived() {
	sinkq '" ".join([str(len(tid("'$1'")))] + [tid("'$1'")[0][k] for k in ("listener", "peer_ip", "helo")] if tid("'$1'") else ["0"])'
}

send() {	# send TESTID RCPT
	submit_file "$(message_file "$1")" -i -f alice@src.example "$2"
}

section "route with smtp_address_preference = ipv6"
world ipv6
assert_exit 0 "$QUEUERUN" route a@dual.test
R=$(last_out)
say "$R"
assert_eq "  mx: mx.dual.test (preference 10) ::1, 127.0.0.181" \
    "$(printf '%s\n' "$R" | grep '^  mx:')" \
    "route: the AAAA address first, then the A address"
assert_match "$R" "address order: smtp_address_preference = ipv6 first" "route: the order and why"
assert_match "$R" "source: ::1 \(helo six\.example\.org\), next by weighted round robin, for the IPv6 addresses" \
    "route: the IPv6 source"
assert_match "$R" "source: 127\.0\.0\.191 \(helo four\.example\.org\), next by weighted round robin, for the IPv4 addresses" \
    "route: the IPv4 source"
assert_exit 0 "$QUEUERUN" route "a@[IPv6:::1]"
assert_match "$(last_out)" "host: ::1 ::1" "route: an IPv6 domain literal is that host"
assert_exit 0 "$QUEUERUN" route a@implicit6.test
assert_match "$(last_out)" "host: implicit6.test ::1" "route: an implicit MX with an AAAA record"
assert_exit 0 "$QUEUERUN" route a@dual4p.test
assert_match "$(last_out)" "::1 \(not tried: pool four has no IPv6 source\)" \
    "route: an IPv4-only pool does not try the IPv6 address"

section "delivery with ipv6 first"
send six-dual rcpt@dual.test
send six-v6 rcpt@v6.test
send six-implicit rcpt@implicit6.test
send six-literal "rcpt@[IPv6:::1]"
send six-p6 rcpt@dual6p.test
send six-p4 rcpt@dual4p.test
send six-none rcpt@v4in6p.test
ID_NONE=$NEWID
send six-half rcpt@half.test
assert_exit 0 timeout -k 5 120 "$QUEUERUN" run --flush
assert_eq "1 127.0.0.183:$HALF_PORT 127.0.0.191 four.example.org" \
    "$(SINKLOG=$HALF_LOG arrived six-half)" \
    "the IPv6 address refused: the IPv4 one, from the IPv4 source"
assert_eq "1 421" "$(SINKLOG=$HALF_LOG sinkq 'str(len([r for r in S if r["listener"].startswith("[::1]")])) + " " + str(S[0]["greeting"])')" \
    "the IPv6 address was tried first (one session, greeted 421)"
for t in six-dual six-v6 six-implicit six-literal; do
	assert_eq "1 [::1]:$PORT ::1 six.example.org" "$(arrived $t)" \
	    "$t: at [::1], from the pool's IPv6 source, with its helo"
done
assert_eq "1 [::1]:$PORT ::1 only6.example.org" "$(arrived six-p6)" \
    "an IPv6-only pool: over IPv6"
assert_eq "1 127.0.0.181:$PORT 127.0.0.191 only4.example.org" "$(arrived six-p4)" \
    "an IPv4-only pool: over IPv4, ipv6 first notwithstanding"
assert_eq "0" "$(arrived six-none)" "no address of the pool's family: nothing sent"
check_rcpt "$ID_NONE" rcpt@v4in6p.test queued 1
check_log "$ID_NONE" rcpt@v4in6p.test deferred '4\.[0-9]+\.[0-9]+' "no address of the MX hosts is of a family the source pool has an address of"
assert_match "$(grep -F "relay=mx.dual.test[::1]:$PORT" "$LOGFILE" | head -1)" "status=sent" \
    "the log's relay= names the IPv6 address"

section "delivery with ipv4 first"
world ipv4
assert_exit 0 "$QUEUERUN" route a@dual.test
assert_eq "  mx: mx.dual.test (preference 10) 127.0.0.181, ::1" \
    "$(last_out | grep '^  mx:')" "route: the A address first"
send four-dual rcpt@dual.test
send four-p6 rcpt@dual6p.test
send four-v6in4 rcpt@v6in4p.test
ID_NONE=$NEWID
assert_exit 0 timeout -k 5 120 "$QUEUERUN" run --flush
assert_eq "1 127.0.0.181:$PORT 127.0.0.191 four.example.org" "$(arrived four-dual)" \
    "dual.test: at 127.0.0.181, from the pool's IPv4 source"
assert_eq "1 [::1]:$PORT ::1 only6.example.org" "$(arrived four-p6)" \
    "an IPv6-only pool: over IPv6, ipv4 first notwithstanding"
assert_eq "0" "$(arrived four-v6in4)" "an IPv4-only pool and an IPv6-only MX: nothing sent"
check_rcpt "$ID_NONE" rcpt@v6in4p.test queued 1

section "any (the default): either family first, at random"
world any
first=
for i in $(seq 1 40); do
	f=$("$QUEUERUN" route a@dual.test | grep -m1 '^  mx:' | sed 's/.*) //; s/,.*//')
	first="$first $f"
done
n6=$(printf '%s\n' $first | grep -c '^::1$')
n4=$(printf '%s\n' $first | grep -c '^127\.0\.0\.181$')
say "first address over 40 routes: ::1 $n6 times, 127.0.0.181 $n4 times"
assert_eq 40 $((n6 + n4)) "every route named one of the two first"
assert_eq 1 "$(pyc "int($n6 >= 5 and $n4 >= 5)")" "both families came first (::1 $n6, 127.0.0.181 $n4 of 40)"
assert_match "$("$QUEUERUN" route a@dual.test)" "address order: smtp_address_preference = any: random order" \
    "route: the order and why"
send any-dual rcpt@dual.test
assert_exit 0 timeout -k 5 120 "$QUEUERUN" run --flush
assert_match "$(arrived any-dual)" "^1 (\[::1\]:$PORT ::1 six|127\.0\.0\.181:$PORT 127\.0\.0\.191 four)\.example\.org$" \
    "dual.test with any: over either family, from the source of that family"

section "configuration"
world bogus
assert_exit 78 "$QUEUERUN" route a@dual.test
assert_match "$(last_err)" "smtp_address_preference = \"bogus\": expected any, ipv4 or ipv6" "a bad preference is a config error"
assert_no_traceback
finish
