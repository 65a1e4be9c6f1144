#!/bin/bash
# NAME
#	delivery_engine - one queue run keeps many SMTP sessions in flight,
#	within delivery_concurrency and destination_concurrency, and
#	delivers every message exactly once
# DESCRIPTION
#	The MX hosts are tests/servers/rtsink, which answers every command
#	one round trip (-d 50: 50 ms) late, as a server across the internet
#	does, and records every accepted message's X-Test-Id and the address
#	it came in on. Each test domain dK.eng.test has its own MX host on
#	its own loopback address, found through the test DNS server.
#
#	  - 2,000 messages over 100 domains, one `queuerun run` with the
#	    defaults (delivery_concurrency 100, destination_concurrency 20):
#	    it exits 0 and the queue is empty; the sink saw more than 50
#	    sessions at once, never more than 100, and no address more than
#	    20 at once; every X-Test-Id arrived exactly once, on the
#	    address of its recipient's MX;
#	  - the same drain with delivery_lease_time = 3s, the runner and
#	    all its workers killed with SIGKILL ten times at random moments
#	    (0.1-0.5 s after each start; a runner that ends first is not
#	    counted, 40 starts at most; MXL_SEED replays them), then
#	    drained: every message arrived, on its MX's address, and the
#	    copies beyond the first number at most one per session in
#	    flight at each kill (100);
#	  - 400 messages for 2 domains with delivery_concurrency = 9 and
#	    destination_concurrency = 4: no address above 4 sessions at
#	    once, both reached 4 (the window grows from
#	    initial_destination_concurrency = 2), the whole never above 8;
#	  - 200 domains that share one MX host, two messages each, claimed
#	    in a scattered order: the runner learns which host serves them
#	    before it starts their sessions, so their mail is one
#	    destination: at most 20 sessions at once and at most 60 in all
#	    (one destination per domain would open 200);
#	  - --max-time against a server that stalls (answers the greeting,
#	    then nothing, for ever): the pass ends within max-time + 10 s,
#	    exit 0, and the mail is still queued, none lost, none bounced.
# SEE ALSO
#	runner_concurrency.sh, runner_crash.sh, tests/servers/README
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON" "$SERVERS/dnsserver.py" \
    "$MXL_BUILD/tests/servers/rtsink"

DNS_IP=127.0.0.83
NDOM=100
N=2000
PREFIX=eng-$$

# mx_ip K: the loopback address of dK.eng.test's MX host
mx_ip() { echo "127.0.2.$(($1 + 1))"; }

# check_record MAP: every test id of MAP exactly once in the record, on
# the address of its domain's MX host; prints "ok" or what is wrong
check_record() {
	"$PYTHON" - "$1" "$RT_RECORD" <<'EOF'
import collections, re, sys
want = {}
for line in open(sys.argv[1]):
    tid, qid, rcpt = line.split()
    k = int(re.search(r"@d(\d+)\.", rcpt).group(1))
    want[tid] = "127.0.2.%d" % (k + 1)
got = collections.Counter()
wrong = 0
for line in open(sys.argv[2]):
    addr, tid = line.split()
    got[tid] += 1
    if tid in want and want[tid] != addr:
        wrong += 1
missing = [t for t in want if got[t] == 0]
dups = [t for t in got if got[t] > 1]
unknown = [t for t in got if t not in want]
if missing or dups or unknown or wrong:
    print("missing=%d dups=%d unknown=%d wrong_address=%d e.g. %s" % (
        len(missing), len(dups), len(unknown), wrong,
        (missing + dups + unknown)[:3]))
else:
    print("ok")
EOF
}

# most_per_address: the highest max_concurrent of any address
most_per_address() {
	sed -n 's/^addr=.* max_concurrent=\([0-9]*\).*/\1/p' "$RT_STATS" |
	    sort -n | tail -1
}

{
	for ((d = 0; d < NDOM; d++)); do
		echo "d$d.eng.test MX 10 mx$d.eng.test"
		echo "mx$d.eng.test A $(mx_ip $d)"
	done
	# s0 ... s199: two hundred domains served by one host
	for ((d = 0; d < 200; d++)); do
		echo "s$d.eng.test MX 10 shared.eng.test"
	done
	echo "shared.eng.test A 127.0.3.1"
	echo "stall.eng.test MX 10 stall.eng.test"
	echo "stall.eng.test A 127.0.3.2"
} >"$SRV/zone"
start_dns "$SRV/zone" $DNS_IP

# ---------------------------------------------------------------- 2,000

section "one run, 2,000 messages, 100 domains, 50 ms round trips"
addrs=()
for ((d = 0; d < NDOM; d++)); do
	addrs+=("$(mx_ip $d)")
done
start_rtsink rt "${addrs[@]}" -- -d 50
setup eng "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $RT_PORT" \
    "smtp_tls = false"
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $N $NDOM $PREFIX \
    "d%d.eng.test" 1000 4 "$W/map")
assert_eq "queued=$N unique_ids=$N errors=0" "$R" "submission result"
t0=$(date +%s%N)
assert_exit 0 "$QUEUERUN" run
say "drained $N in $(elapsed_ms $t0) ms"
assert_queue_empty "after one run"
rt_stats >/dev/null
G=$(head -1 "$RT_STATS")
say "sink: $G; busiest address: $(most_per_address)"
most=$(kv max_concurrent "$G")
assert_true "[ $most -gt 50 ]" "more than 50 sessions at once (got $most)"
assert_true "[ $most -le 100 ]" "at most delivery_concurrency (100) at once (got $most)"
assert_true "[ $(most_per_address) -le 20 ]" \
    "no MX host above destination_concurrency (20) (got $(most_per_address))"
assert_eq ok "$(check_record "$W/map")" "every message exactly once, at its MX"
assert_eq "$N" "$(grep -c 'status=sent' "$LOGFILE")" "status=sent log lines"

# ---------------------------------------------------------------- kill -9

section "kill -9 the runner and its workers ten times, then drain"
start_rtsink rtk "${addrs[@]}" -- -d 50
setup engk "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $RT_PORT" \
    "smtp_tls = false" "delivery_lease_time = \"3s\""
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $N $NDOM $PREFIX-k \
    "d%d.eng.test" 1000 4 "$W/map")
assert_eq "queued=$N unique_ids=$N errors=0" "$R" "submission result"
SEED=${MXL_SEED:-$(date +%s)}
RANDOM=$SEED
kills=0 starts=0
# A runner that finds nothing due (the killed ones' claims have not run
# out yet) ends by itself and is not counted; another is started.
while [ $kills -lt 10 ] && [ $starts -lt 40 ]; do
	starts=$((starts + 1))
	# A session of its own, so that the kill takes every worker too.
	setsid "$QUEUERUN" run >/dev/null 2>&1 &
	k=$!
	sleep "0.$((100 + RANDOM % 400))"
	if kill -0 "$k" 2>/dev/null; then
		kill -KILL -- "-$k" 2>/dev/null
		kills=$((kills + 1))
	else
		sleep 1		# for the killed ones' claims to run out
	fi
	wait "$k" 2>/dev/null
done
at_kills=$(awk '{ print $2 }' "$RT_RECORD" | sort -u | wc -l)
say "seed $SEED: $kills kills in $starts starts; $at_kills distinct messages at the sink by then"
assert_eq 10 "$kills" "runners killed while running"
assert_true "[ $at_kills -lt $N ]" "the kills fell in the middle of the drain ($at_kills of $N delivered)"
for ((pass = 0; pass < 20; pass++)); do
	assert_exit 0 "$QUEUERUN" run
	[ "$(queue_count)" -eq 0 ] && break
	sleep 1		# claims of the killed runners run out after 3 s
done
assert_queue_empty "after the kills and the drain"
got=$(check_record "$W/map")
dups=$(awk '{ print $2 }' "$RT_RECORD" | sort | uniq -d | wc -l)
extra=$(($(wc -l <"$RT_RECORD") - N))
say "after the drain: $got; $extra copies beyond the first ($dups messages)"
case $got in
ok) pass ;;
missing=0\ dups=*\ unknown=0\ wrong_address=0*) pass ;;
*) fail "messages lost or misdelivered after the kills: $got" ;;
esac
# Each kill may cut at most one transaction per session in flight.
assert_true "[ $extra -le $((kills * 100)) ]" "duplicates within one per session in flight at each kill ($extra, bound $((kills * 100)))"

# ---------------------------------------------------------------- windows

section "destination_concurrency and delivery_concurrency hold"
start_rtsink rt2 "$(mx_ip 0)" "$(mx_ip 1)" -- -d 50
setup eng2 "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $RT_PORT" \
    "smtp_tls = false" "delivery_concurrency = 9" \
    "destination_concurrency = 4" "initial_destination_concurrency = 2"
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" 400 2 $PREFIX-w \
    "d%d.eng.test" 1000 4 "$W/map")
assert_eq "queued=400 unique_ids=400 errors=0" "$R" "submission result"
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "after one run"
rt_stats >/dev/null
say "sink: $(head -1 "$RT_STATS")"
for d in 0 1; do
	m=$(kv max_concurrent "$(grep "^addr=$(mx_ip $d) " "$RT_STATS")")
	assert_eq 4 "$m" "sessions at once to d$d's MX: grew from 2 to 4, no more"
done
most=$(kv max_concurrent "$(head -1 "$RT_STATS")")
assert_true "[ $most -le 8 ]" "two destinations of 4: at most 8 at once (got $most)"
assert_eq ok "$(check_record "$W/map")" "every message exactly once, at its MX"

# ---------------------------------------------------------------- sharing

section "domains on one MX host share sessions, in any order"
start_rtsink rt3 127.0.3.1 -- -d 20
setup eng3 "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $RT_PORT" \
    "smtp_tls = false"
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" 400 200 $PREFIX-s \
    "s%d.eng.test" 1000 4 "$W/map")
assert_eq "queued=400 unique_ids=400 errors=0" "$R" "submission result"
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "after one run"
rt_stats >/dev/null
G=$(grep "^addr=127.0.3.1 " "$RT_STATS")
say "shared MX: $G"
assert_eq 400 "$(kv messages "$G")" "messages at the shared MX"
sessions=$(kv sessions "$G")
assert_true "[ $sessions -le 60 ]" "400 messages for 200 domains of one MX in at most 60 sessions, not one or more per domain (got $sessions)"
assert_true "[ $(kv max_concurrent "$G") -le 20 ]" "the shared MX host is one destination: at most destination_concurrency (20) sessions at once"

# ---------------------------------------------------------------- max-time

section "--max-time ends a pass against a server that stalls"
# rtsink -d 600000: the greeting comes ten minutes late.
start_rtsink rt4 127.0.3.2 -- -d 600000
setup eng4 "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $RT_PORT" \
    "smtp_tls = false"
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" 30 1 $PREFIX-t \
    "stall%.0s.eng.test" 1000 1 "$W/map")
assert_eq "queued=30 unique_ids=30 errors=0" "$R" "submission result"
t0=$(date +%s%N)
assert_exit 0 "$QUEUERUN" run --max-time 3
ms=$(elapsed_ms $t0)
say "a pass with --max-time 3 took $ms ms"
assert_true "[ $ms -lt 13000 ]" "the pass ended within max-time + 10 s (took $ms ms)"
assert_queue_count 30
assert_eq 0 "$(grep -c 'status=bounced' "$LOGFILE")" "nothing bounced"
assert_eq 0 "$(grep -c 'status=deferred' "$LOGFILE")" "nothing deferred: abandoned, handed back"

finish
