#!/bin/bash
# NAME
#	priority_under_load - a password reset reaches its MX within 2 s
#	while a daemon is busy with 50,000 bulk messages for slow servers
# DESCRIPTION
#	Queues 50,000 bulk-lane messages (default_lane = "bulk") for 100
#	domains whose MX hosts (tests/servers/rtsink, one loopback address
#	each) answer every command 100 ms late, picks them up into the spool
#	(a pass restricted to a domain that has no mail), then starts
#	`queuerun run --daemon`. Once the slow sink has at least 50 sessions
#	in flight, one message is submitted in the priority lane for a
#	domain whose MX (another rtsink) answers at once. Asserts:
#	  - the bulk queue was whole: 50,000 queued;
#	  - the daemon was busy: 50 or more bulk sessions in flight when the
#	    priority message was submitted, and still at least one when it
#	    arrived (the bulk mail was not done);
#	  - the priority message reached its MX within 2 s of sendmail
#	    returning (the issue's promise, on loopback), exactly once;
#	  - 4 s later (some bulk mail delivered by then) the daemon stops on
#	    SIGTERM within 10 s and exits 0, and nothing was lost: the bulk
#	    messages at the sink plus those still queued make 50,000 at
#	    least, and at most 50,000 plus the sessions in flight at the
#	    stop (an abandoned transaction may have reached the sink).
#	Under MXL_SANITIZE=1 10,000 bulk messages are queued instead.
# SEE ALSO
#	delivery_engine.sh, routing_lanes.sh
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON" "$SERVERS/dnsserver.py" \
    "$MXL_BUILD/tests/servers/rtsink"

if [ -n "${MXL_SANITIZE:-}" ]; then N=10000; else N=50000; fi
NDOM=100
DNS_IP=127.0.0.85
FAST_IP=127.0.5.200
PREFIX=load-$$

{
	for ((d = 0; d < NDOM; d++)); do
		echo "d$d.load.test MX 10 mx$d.load.test"
		echo "mx$d.load.test A 127.0.5.$((d + 1))"
	done
	echo "reset.test MX 10 mx.reset.test"
	echo "mx.reset.test A $FAST_IP"
} >"$SRV/zone"
start_dns "$SRV/zone" $DNS_IP

section "queue $N bulk messages for slow servers"
addrs=()
for ((d = 0; d < NDOM; d++)); do
	addrs+=("127.0.5.$((d + 1))")
done
start_rtsink slow "${addrs[@]}" -- -d 100
SLOW_PID=$RT_PID SLOW_STATS=$RT_STATS SLOW_RECORD=$RT_RECORD
start_rtsink fast $FAST_IP
FAST_RECORD=$RT_RECORD
# Both sinks listen on their own port; the slow one's is the default,
# reset.test goes through a provider relay on the fast one's.
setup load "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_tls = false" \
    "default_lane = \"bulk\"" "immediate_delivery = true"
FAST_PORT=$RT_PORT
RT_PID=$SLOW_PID RT_STATS=$SLOW_STATS
SLOW_PORT=$(sed -n 's/^port=//p' "$SRV/slow/ready")
cat >>"$CONF" <<EOF
smtp_port = $SLOW_PORT
provider "reset" { domains = { "reset.test" } relay = "[$FAST_IP]:$FAST_PORT" }
EOF
t0=$(date +%s%N)
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $N $NDOM $PREFIX \
    "d%d.load.test" 500 4 "$W/map")
say "queued in $(elapsed_ms $t0) ms: $R"
assert_eq "queued=$N unique_ids=$N errors=0" "$R" "submission result"
# A pass for a domain with no mail takes everything into the spool.
t0=$(date +%s%N)
assert_exit 0 "$QUEUERUN" run --domain nothing.test
say "picked up in $(elapsed_ms $t0) ms"
assert_queue_count $N

section "a priority message while the daemon is busy"
"$QUEUERUN" run --daemon 1h >"$W/daemon.out" 2>&1 &
DPID=$!
track_pid "$DPID"
busy() { [ "$(kv active "$(rt_stats)")" -ge 50 ]; }
if wait_for 60 busy; then
	pass
else
	fail "the daemon never had 50 bulk sessions in flight" "$(rt_stats)"
fi
before=$(kv active "$(rt_stats)")
printf 'From: <site@example.org>\nTo: <user@reset.test>\nSubject: reset\nX-Test-Id: %s-reset\n\nyour code\n' "$PREFIX" >"$W/reset.eml"
assert_exit 0 "$SENDMAIL" -i -O Lane=priority user@reset.test <"$W/reset.eml"
t0=$(date +%s%N)
arrived() { grep -q " $PREFIX-reset\$" "$FAST_RECORD"; }
wait_for 30 arrived
ms=$(elapsed_ms $t0)
after=$(kv active "$(rt_stats)")
say "bulk sessions in flight: $before when submitted, $after when it arrived; the reset took $ms ms"
assert_true "[ $before -ge 50 ] && [ $after -ge 1 ]" "the daemon was busy with bulk mail ($before, then $after sessions)"
assert_true "[ $ms -le 2000 ]" "the priority message reached its MX within 2 s of sendmail returning (took $ms ms)"
assert_eq 1 "$(grep -c " $PREFIX-reset\$" "$FAST_RECORD")" "copies of the priority message at its MX"

section "the daemon stops, nothing lost"
sleep 4
kill -TERM "$DPID"
if wait_for 10 sh -c "! kill -0 $DPID 2>/dev/null"; then
	wait "$DPID"
	assert_eq 0 "$?" "daemon's exit status after SIGTERM"
else
	fail "the daemon still ran 10 s after SIGTERM"
fi
rt_stats >/dev/null
# A pass that delivers nothing removes what was delivered but not yet
# removed when the daemon stopped.
assert_exit 0 "$QUEUERUN" run --domain nothing.test
delivered=$(awk '{ print $2 }' "$SLOW_RECORD" | sort -u | wc -l)
left=$(queue_count)
say "bulk delivered: $delivered; still queued: $left"
assert_true "[ $((delivered + left)) -ge $N ] && [ $((delivered + left)) -le $((N + 105)) ]" \
    "bulk messages delivered plus still queued: $delivered + $left, from $N to $N + 105"
assert_true "[ $delivered -gt 0 ]" "some bulk mail was delivered before the stop ($delivered)"

finish
