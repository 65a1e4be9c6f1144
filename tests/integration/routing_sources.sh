#!/bin/bash
# NAME
#	routing_sources.sh - source address pools, providers by domain and by
#	MX, queuerun route / sendmail -bv, and routing config errors
# DESCRIPTION
#	Runs the issue's sample configuration as written (resolver and
#	smtp_port replaced by the test DNS server's port and a random sink
#	port, the relay's port likewise) against a test DNS server and one
#	sink listening on the MX and relay addresses. Asserts:
#	  - queuerun route and sendmail -bv print, per address, the lane and
#	    why, the provider and why ("domain ... listed as ...", "MX ...
#	    matches ...", "therest"), the MX hosts or the relay, the pool and
#	    why with its sources and weights (127.0.0.13 shown disabled), the
#	    next source and the limits; -bv prints what route prints; a
#	    provider domain ".sub.test" matches subdomains only;
#	  - the source named by route as next is the one the next connection
#	    comes from, over 8 separate single-message passes, and those 8
#	    passes (separate processes: the counts live in the spool) go
#	    6 from 127.0.0.11 and 2 from 127.0.0.12 (weights 3:1);
#	  - 400 bulk messages to gmail.com, drained by a daemon at gmail's
#	    limits, arrive from 127.0.0.11 and 127.0.0.12 in a 3:1 ratio
#	    (.12 carries 100, to within the messages of one connection, as
#	    the source is chosen per connection; the rate keeps connections
#	    at most 40 messages), never from 127.0.0.13, each exactly once,
#	    with the helo of their source;
#	  - priority-lane mail (the default lane) arrives from 127.0.0.20,
#	    for gmail.com and for a "therest" domain alike;
#	  - a domain whose MX is aspmx.l.google.com is gmail: route says "MX
#	    aspmx.l.google.com matches *.google.com" with gmail's pool and
#	    limits, and its bulk mail arrives from gmail's source addresses;
#	  - route names, for a domain literal [IP], that address as the one
#	    host, and for a fixed relay [IP]:port, the relay and its host;
#	    mail to each then arrives at that host and port from the source
#	    route named, the log's relay= says so, and neither route nor
#	    delivery asks the DNS server anything;
#	  - config errors (an unknown pool for a provider and for a lane, a
#	    malformed rate, an enabled source address that is not local) make
#	    every program print "file:line: problem" naming the line of the
#	    problem and exit 78; a switched-off source need not be local.
#	Takes about 30 seconds.
# SEE ALSO
#	routing_throttle.sh, routing_lanes.sh
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN"

# ---------------------------------------------------------------- servers

section "DNS and sink"
MX_G=127.0.0.40		# gmail's MX hosts (google.com names)
MX_O=127.0.0.41		# the MX of other.test (therest)
RELAY=127.0.0.30	# the internal relay
cat >"$SRV/zone" <<EOF
gmail.com			MX 5 gmail-smtp-in.l.google.com
gmail.com			MX 10 alt1.gmail-smtp-in.l.google.com
gmail-smtp-in.l.google.com	A $MX_G
alt1.gmail-smtp-in.l.google.com	A $MX_G
gcorp.test			MX 1 aspmx.l.google.com
aspmx.l.google.com		A $MX_G
other.test			MX 10 mx.other.test
mx.other.test			A $MX_O
a.sub.test			MX 10 mx.other.test
sub.test			MX 10 mx.other.test
EOF
start_dns "$SRV/zone"
start_sink sink --listen $MX_G:@P@ --listen $MX_O:@P@ --listen $RELAY:@P@ \
    --max-lifetime 600
say "sink on port $PORT, DNS on 127.0.0.1:$DNS_PORT"

# ---------------------------------------------------------------- route

section "queuerun route and sendmail -bv on the sample configuration"
setup route "$(sample_config "$PORT" "$DNS_PORT")" \
    'provider sub { domains = { ".sub.test" } pool = "gmail" rate = "5/m" }'

assert_exit 0 "$QUEUERUN" route --lane bulk user@gmail.com
R=$(last_out)
assert_eq "user@gmail.com" "$(printf '%s\n' "$R" | head -1)" "route: first line is the address"
assert_match "$(route_field "$R" lane)" '^bulk \(.*Lane=bulk.*\)$' "route: lane (and why)"
assert_eq "gmail (domain gmail.com listed as gmail.com)" "$(route_field "$R" provider)" "route: provider of gmail.com"
assert_match "$R" "^  mx: gmail-smtp-in\.l\.google\.com \(preference 5\) $MX_G\$" "route: first MX host"
assert_match "$R" "^  mx: alt1\.gmail-smtp-in\.l\.google\.com \(preference 10\) $MX_G\$" "route: second MX host"
P=$(route_field "$R" pool)
assert_match "$P" '^gmail \(provider gmail\):' "route: pool of bulk gmail mail (and why)"
assert_match "$P" '127\.0\.0\.11 weight 3' "route: pool sources and weights"
assert_match "$P" '127\.0\.0\.12 weight 1' "route: pool sources and weights"
assert_match "$P" '127\.0\.0\.13 [^,]*disabled' "route: the disabled source is shown as disabled"
assert_match "$(route_field "$R" source)" '^127\.0\.0\.1[12] \(helo gm[12]\.example\.org\)' "route: the next source"
L=$(route_field "$R" limits)
for k in "concurrency 4" "rate 20/s" "recipients_per_message 50" "messages_per_connection 100"; do
	assert_contains "$L" "$k" "route: limits of gmail"
done

# -bv prints the same as route
assert_exit 0 "$SENDMAIL" -bv -O Lane=bulk user@gmail.com
assert_eq "$R" "$(last_out)" "sendmail -bv -O Lane=bulk output vs queuerun route --lane bulk"

# The default lane is priority: its pool (transactional) wins.
assert_exit 0 "$QUEUERUN" route user@gmail.com
R=$(last_out)
assert_eq "priority (default_lane)" "$(route_field "$R" lane)" "route: default lane"
assert_match "$(route_field "$R" pool)" '^transactional \(.*lane priority.*\): 127\.0\.0\.20 weight 1$' \
    "route: the priority lane's pool overrides gmail's"
assert_match "$(route_field "$R" source)" '^127\.0\.0\.20 \(helo tx\.example\.org\)' "route: source of priority mail"
assert_exit 0 "$SENDMAIL" -bv user@gmail.com
assert_eq "$R" "$(last_out)" "sendmail -bv output vs queuerun route"

# Sender rule
assert_exit 0 "$QUEUERUN" route --sender news@lists.example.org user@gmail.com
assert_match "$(route_field "$(last_out)" lane)" '^bulk \(.*\*@lists\.example\.org.*\)$' \
    "route --sender: lane by match_sender (and why)"

# Provider by MX: a Google-hosted domain
assert_exit 0 "$QUEUERUN" route --lane bulk boss@gcorp.test
R=$(last_out)
assert_eq "gmail (MX aspmx.l.google.com matches *.google.com)" "$(route_field "$R" provider)" \
    "route: provider of a Google-hosted domain"
assert_match "$R" "^  mx: aspmx\.l\.google\.com \(preference 1\) $MX_G\$" "route: MX of gcorp.test"
assert_match "$(route_field "$R" pool)" '^gmail \(provider gmail\):' "route: gcorp.test uses gmail's pool"
assert_contains "$(route_field "$R" limits)" "rate 20/s" "route: gcorp.test has gmail's limits"

# therest
assert_exit 0 "$QUEUERUN" route --lane bulk bob@other.test
R=$(last_out)
assert_match "$(route_field "$R" provider)" '^therest \(.*therest.*\)$' "route: provider of other.test"
assert_match "$R" "^  mx: mx\.other\.test \(preference 10\) $MX_O\$" "route: MX of other.test"
assert_match "$(route_field "$R" pool)" '^default \(provider therest\): 127\.0\.0\.1 weight 1$' "route: pool of therest"
assert_eq "concurrency 20" "$(route_field "$R" limits)" "route: limits of therest"

# relay: no MX look-up
: >"$SRV/dns.log"
assert_exit 0 "$QUEUERUN" route --lane bulk staff@example.org
R=$(last_out)
assert_eq "internal (domain example.org listed as example.org)" "$(route_field "$R" provider)" \
    "route: provider of example.org"
assert_match "$(route_field "$R" relay)" "^\[127\.0\.0\.30\]:$PORT( |\$)" "route: the relay of example.org"
assert_no_match "$R" '^  mx:' "route: no MX hosts for a relayed domain"
assert_match "$(route_field "$R" limits)" '^(none|unthrottled)' "route: internal is unthrottled"
assert_eq "" "$(grep -i 'example\.org' "$SRV/dns.log")" "DNS queries for example.org (relay: none)"

# ".sub.test" lists every subdomain of sub.test, not sub.test itself
assert_exit 0 "$QUEUERUN" route --lane bulk x@a.sub.test x@sub.test
R=$(last_out)
assert_eq "sub (domain a.sub.test listed as .sub.test)" \
    "$(printf '%s\n' "$R" | sed -n '/^x@a.sub.test$/,/^x@sub.test$/s/^  provider: //p')" \
    "route: provider of a subdomain of .sub.test"
assert_match "$(printf '%s\n' "$R" | sed -n '/^x@sub.test$/,$s/^  provider: //p')" '^therest ' \
    "route: sub.test itself is not in .sub.test"

# several addresses at once: one block each, in order
assert_exit 0 "$QUEUERUN" route a@gmail.com b@other.test c@example.org
assert_eq "a@gmail.com b@other.test c@example.org" "$(grep -v '^ ' "$OUT" | tr '\n' ' ' | sed 's/ $//')" \
    "route with three addresses: the address lines"
assert_eq 3 "$(grep -c '^  provider: ' "$OUT")" "route with three addresses: provider lines"

# ---------------------------------------------------------------- next source

section "the next source route names is the one used; 3:1 across separate passes"
setup passes "$(sample_config "$PORT" "$DNS_PORT")"
seen=
for i in 1 2 3 4 5 6 7 8; do
	assert_exit 0 "$QUEUERUN" route --lane bulk "p$i@gmail.com"
	want=$(route_field "$(last_out)" source | cut -d' ' -f1)
	printf 'From: a@src.example\nX-Test-Id: pass-%d\n\npass %d\n' "$i" "$i" |
	    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk "p$i@gmail.com"
	assert_exit 0 "$QUEUERUN" run
	got=$(sinkq "[m['peer_ip'] for m in tids('pass-$i')]")
	assert_eq "['$want']" "$got" "pass $i: source used vs the one route named"
	seen="$seen $want"
done
say "sources of 8 single-message passes:$seen"
# shellcheck disable=SC2086 # one word per source
assert_eq 6 "$(printf '%s\n' $seen | grep -cx '127.0.0.11')" "passes from 127.0.0.11 (weight 3 of 4)"
# shellcheck disable=SC2086
assert_eq 2 "$(printf '%s\n' $seen | grep -cx '127.0.0.12')" "passes from 127.0.0.12 (weight 1 of 4)"

# ---------------------------------------------------------------- ratio

section "400 bulk messages to gmail.com: 3:1 from .11/.12, never .13"
setup ratio "$(sample_config "$PORT" "$DNS_PORT")"
queue_bs 400 news@src.example 'r%d@gmail.com' ratio -O Lane=bulk
assert_queue_count 400 "bulk gmail messages queued"
t0=$(date +%s.%N)
drain_daemon 90
t1=$(date +%s.%N)
say "drained in $("$PYTHON" -c "print(round($t1 - $t0, 1))") s"
n11=$(sinkq "len([m for m in tids('ratio-') if m['peer_ip'] == '127.0.0.11'])")
n12=$(sinkq "len([m for m in tids('ratio-') if m['peer_ip'] == '127.0.0.12'])")
say "from 127.0.0.11: $n11, from 127.0.0.12: $n12"
# The connections in the order they began: source and messages carried.
conns=$(sinkq "[(m['session'], m['peer_ip'][-2:]) for m in tids('ratio-')]" |
    "$PYTHON" -c 'import ast, collections, sys
c = collections.OrderedDict()
for s, ip in sorted(ast.literal_eval(sys.stdin.read())):
    c[s] = (ip, c.get(s, (ip, 0))[1] + 1)
print(" ".join("%s:%d" % v for v in c.values()))')
say "connections (source:messages): $conns"
assert_eq 400 "$(sinkq "len(tids('ratio-'))")" "bulk gmail messages arrived"
assert_eq 400 "$(sinkq "len(set(m['x_test_id'] for m in tids('ratio-')))")" "distinct bulk gmail messages arrived"
assert_eq 400 "$((n11 + n12))" "bulk gmail messages from 127.0.0.11 or 127.0.0.12"
assert_eq 0 "$(sinkq "len([r for r in R if r.get('peer_ip') == '127.0.0.13'])")" \
    "sink records from the disabled 127.0.0.13"
# The source is chosen per connection, and a connection's messages all
# count for it: 127.0.0.12's share (100) is exact to within one
# connection's load (the rate of 20/s keeps connections to about 10-20
# messages here); without the weights it would be 200.
biggest=$(printf '%s\n' $conns | cut -d: -f2 | sort -n | tail -1)
say "the most messages one connection carried: $biggest"
assert_eq True "$([ "$biggest" -le 40 ] && echo True)" \
    "a connection carried at most 40 messages (the rate paces them), so the check below means something"
assert_eq True "$("$PYTHON" -c "print(abs($n12 - 100) <= $biggest)")" \
    "127.0.0.11:127.0.0.12 = $n11:$n12 is 300:100 to within one connection ($biggest messages)"
assert_eq "[]" "$(sinkq "sorted(set((m['peer_ip'], m['helo']) for m in tids('ratio-')) - {('127.0.0.11', 'gm1.example.org'), ('127.0.0.12', 'gm2.example.org')})")" \
    "(source, helo) pairs other than the configured ones"
assert_eq "[]" "$(sinkq "sorted(set(m['listener'] for m in tids('ratio-')) - {'$MX_G:$PORT'})")" \
    "listeners other than gmail's MX"

# ---------------------------------------------------------------- priority

section "priority-lane mail comes from 127.0.0.20"
setup prio "$(sample_config "$PORT" "$DNS_PORT")" "immediate_delivery = true"
for i in 1 2 3; do
	printf 'From: a@src.example\nX-Test-Id: prio-g-%d\n\nreset %d\n' "$i" "$i" |
	    assert_exit 0 "$SENDMAIL" -i "pg$i@gmail.com"
	printf 'From: a@src.example\nX-Test-Id: prio-o-%d\n\nreset %d\n' "$i" "$i" |
	    assert_exit 0 "$SENDMAIL" -i "po$i@other.test"
done
if wait_for 30 sink_true "len(tids('prio-')) == 6"; then
	pass
else
	fail "the 6 priority messages did not all arrive within 30 s" "$(sinkq "len(tids('prio-'))")"
fi
assert_eq "['127.0.0.20']" "$(sinkq "sorted(set(m['peer_ip'] for m in tids('prio-')))")" \
    "source addresses of priority mail (gmail.com and other.test)"
assert_eq "['tx.example.org']" "$(sinkq "sorted(set(m['helo'] for m in tids('prio-')))")" \
    "helo of priority mail"
assert_eq "['$MX_G:$PORT', '$MX_O:$PORT']" "$(sinkq "sorted(set(m['listener'] for m in tids('prio-')))")" \
    "MX hosts reached by priority mail"
wait_for 30 sh -c "$SENDMAIL -bp 2>/dev/null | grep -q '^Mail queue is empty'"
assert_queue_empty "queue after the priority deliveries"

# ---------------------------------------------------------------- by MX

section "a Google-hosted domain is gmail: gmail's sources"
setup bymx "$(sample_config "$PORT" "$DNS_PORT")"
queue_bs 8 news@lists.example.org 'c%d@gcorp.test' gcorp
assert_exit 0 "$QUEUERUN" route --sender news@lists.example.org c0@gcorp.test
assert_match "$(route_field "$(last_out)" provider)" '^gmail \(MX aspmx\.l\.google\.com matches \*\.google\.com\)$' \
    "route: why gcorp.test is gmail"
next=$(route_field "$(last_out)" source | cut -d' ' -f1)
assert_match "$next" '^127\.0\.0\.1[12]$' "route: next source for gcorp.test"
drain_daemon 30
assert_eq 8 "$(sinkq "len(tids('gcorp-'))")" "gcorp.test messages arrived"
# One connection carries all 8 (messages_per_connection 100), from the
# source route named.
assert_eq "['$next']" "$(sinkq "sorted(set(m['peer_ip'] for m in tids('gcorp-')))")" \
    "source address of gcorp.test bulk mail (gmail's pool, the next source)"
assert_eq "[]" "$(sinkq "sorted(set((m['peer_ip'], m['helo']) for m in tids('gcorp-')) - {('127.0.0.11', 'gm1.example.org'), ('127.0.0.12', 'gm2.example.org')})")" \
    "(source, helo) of gcorp.test mail other than gmail's"
id=$(grep -F 'to=<c0@gcorp.test>' "$LOGFILE" | head -1)
assert_contains "$id" "relay=aspmx.l.google.com[$MX_G]:$PORT" "log line of gcorp.test mail"

# ---------------------------------------------------------------- next hop

# route runs delivery's own next-hop code: what it names for a domain
# literal and for a fixed relay is where the mail then goes, and neither
# costs a DNS query.
section "route says what delivery does: a domain literal and a relay"
setup nexthop "$(sample_config "$PORT" "$DNS_PORT")"
: >"$SRV/dns.log"
assert_exit 0 "$QUEUERUN" route --lane bulk "lit@[$MX_O]"
R=$(last_out)
assert_match "$(route_field "$R" provider)" '^therest \(.*therest.*\)$' "route: provider of a domain literal"
assert_eq "$MX_O $MX_O" "$(route_field "$R" host)" "route: a domain literal is its own host"
assert_no_match "$R" '^  mx:' "route: no MX look-up for a domain literal"
lit_next=$(route_field "$R" source | cut -d' ' -f1)
assert_eq 127.0.0.1 "$lit_next" "route: source for a domain literal (therest's pool)"
assert_exit 0 "$QUEUERUN" route --lane bulk staff@example.org
R=$(last_out)
assert_match "$(route_field "$R" relay)" "^\[$RELAY\]:$PORT \(fixed next hop, no MX look-up\)\$" \
    "route: the relay of example.org"
assert_eq "$RELAY $RELAY" "$(route_field "$R" host)" "route: the relay's host"
relay_next=$(route_field "$R" source | cut -d' ' -f1)
printf 'From: a@src.example\nX-Test-Id: hop-lit\n\nliteral\n' |
    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk "lit@[$MX_O]"
printf 'From: a@src.example\nX-Test-Id: hop-relay\n\nrelay\n' |
    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk staff@example.org
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "queue after delivering to a domain literal and a relay"
assert_eq "[('$MX_O:$PORT', '$lit_next')]" \
    "$(sinkq "[(m['listener'], m['peer_ip']) for m in tid('hop-lit')]")" \
    "domain literal: the host and source route named"
assert_eq "[('$RELAY:$PORT', '$relay_next')]" \
    "$(sinkq "[(m['listener'], m['peer_ip']) for m in tid('hop-relay')]")" \
    "relay: the host, port and source route named"
assert_contains "$(grep -F "to=<lit@[$MX_O]>" "$LOGFILE")" "relay=$MX_O[$MX_O]:$PORT, " \
    "log line of the domain literal's delivery"
assert_contains "$(grep -F 'to=<staff@example.org>' "$LOGFILE")" "relay=$RELAY[$RELAY]:$PORT, " \
    "log line of the relayed delivery"
assert_eq "" "$(cat "$SRV/dns.log")" "DNS queries for a domain literal and a fixed relay (none)"

# ---------------------------------------------------------------- errors

section "config errors: file:line: problem, exit 78"
setup errs "$(sample_config "$PORT" "$DNS_PORT")"
GOOD=$CONF
# bad_config NAME SED-EXPR: a copy of the good config with one change;
# sets BAD and BADLINE (the changed line's number)
bad_config() {
	BAD=$W/$1.conf
	sed "$2" "$GOOD" >"$BAD"
	BADLINE=$(diff "$GOOD" "$BAD" | sed -n 's/^\([0-9]*\)c.*/\1/p' | head -1)
	if [ -n "$BADLINE" ]; then pass; else fail "bad_config $1: nothing changed"; fi
}
# check_error WHAT LINES NEEDLE CMD...: exit 78, one line on stderr
# "BAD:LINE: ..." with LINE one of LINES, mentioning NEEDLE
check_error() {
	local what=$1 lines=$2 needle=$3 line
	shift 3
	assert_exit 78 "$@"
	assert_one_line_stderr "$needle"
	line=$(sed -n "s|^.*$BAD:\([0-9]*\): .*|\1|p" "$ERR" | head -1)
	if [ -n "$line" ] && [[ " $lines " == *" $line "* ]]; then
		pass
	else
		fail "$what: stderr must be '$BAD:LINE: problem' with LINE in {$lines}" \
		    "$(cat "$ERR")"
	fi
}

bad_config nopool 's/^  pool    = "gmail"$/  pool    = "nosuch"/'
hdr_line=$(grep -n '^provider gmail {' "$BAD" | cut -d: -f1)
for cmd in "$QUEUERUN -C $BAD route a@gmail.com" "$QUEUERUN -C $BAD run" \
    "$SENDMAIL -C $BAD -bv a@gmail.com" "$SENDMAIL -C $BAD -i a@gmail.com"; do
	# shellcheck disable=SC2086
	check_error "unknown pool of a provider ($cmd)" "$BADLINE $hdr_line" nosuch $cmd </dev/null
done

bad_config lanepool 's/^lane priority { pool = "transactional" }$/lane priority { pool = "nope" }/'
check_error "unknown pool of a lane" "$BADLINE" nope "$QUEUERUN" -C "$BAD" route a@gmail.com

for r in '20/fortnight' 'abc' '20' '/s' '0/s' '-5/s' '1.5/s' '20/'; do
	bad_config rate "s|^  rate    = \"20/s\"\$|  rate    = \"$r\"|"
	check_error "malformed rate \"$r\"" "$BADLINE" "$r" "$QUEUERUN" -C "$BAD" route a@gmail.com
done
bad_config rate 's|^  rate    = "20/s"$|  rate    = "20/x"|'
check_error "malformed rate (sendmail -bv)" "$BADLINE" "20/x" "$SENDMAIL" -C "$BAD" -bv a@gmail.com

bad_config nonlocal 's/"127\.0\.0\.12"/"192.0.2.1"/'
check_error "source address not local (queuerun route)" "$BADLINE" 192.0.2.1 "$QUEUERUN" -C "$BAD" route a@gmail.com
check_error "source address not local (queuerun run)" "$BADLINE" 192.0.2.1 "$QUEUERUN" -C "$BAD" run
check_error "source address not local (sendmail)" "$BADLINE" 192.0.2.1 "$SENDMAIL" -C "$BAD" -i a@gmail.com </dev/null
# a switched-off source may already be gone from the host
sed 's/"127\.0\.0\.13"/"192.0.2.1"/' "$GOOD" >"$W/offsite.conf"
assert_exit 0 "$QUEUERUN" -C "$W/offsite.conf" route --lane bulk a@gmail.com
assert_match "$(route_field "$(last_out)" pool)" '192\.0\.2\.1 [^,]*disabled' "route: a switched-off source that is not local"

# and the good one is accepted by every program
assert_exit 0 "$QUEUERUN" -C "$GOOD" route a@gmail.com
assert_exit 0 "$SENDMAIL" -C "$GOOD" -bv a@gmail.com
assert_exit 0 "$QUEUERUN" -C "$GOOD" run

finish
