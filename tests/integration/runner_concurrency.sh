#!/bin/bash
# NAME
#	runner_concurrency - three queue runners at once deliver every
#	recipient exactly once
# DESCRIPTION
#	Queues 5,000 one-recipient messages (each with its own X-Test-Id
#	header) for 20 recipient domains whose MX is one test sink
#	(tests/servers/smtpsink.py) found through the test DNS server
#	(tests/servers/dnsserver.py), both on loopback. Submission is four
#	`sendmail -bs` sessions at once, each message committed on its own.
#	Then three `queuerun run` processes are started together, each with
#	delivery_concurrency = 1 (one delivery worker, one connection).
#	Asserts:
#	  - every submission was answered "queued as ID", 5,000 ids, unique;
#	  - all three runners exit 0, and each of them delivered some of the
#	    mail (three "pass done" lines with recipients delivered) while another
#	    was connected too (the sink saw at least 2 sessions at once, and
#	    never more than 3: one connection per runner);
#	  - the sink received exactly 5,000 messages: 5,000 distinct
#	    X-Test-Ids, none twice, none unknown, each to its own recipient
#	    and with the Message-ID of the queue id it was submitted as, none
#	    from the null sender (no bounce was made);
#	  - the log has exactly 5,000 status=sent lines, one per queue id,
#	    and 5,000 "removed" lines, one per queue id; no deferred or
#	    bounced line;
#	  - mailq says "Mail queue is empty".
#	Then a lease shorter than the work: 40 messages to a sink that
#	answers every line 50 ms late, delivery_lease_time = "2s", a
#	second runner started 3 s after the first (when the first one's
#	claims have run out but it is still delivering them): every message
#	reaches the sink exactly once, none of them empty (a runner checks
#	its claims are still its own before each connection).
#	Under MXL_SANITIZE=1 2,000 messages are queued instead of 5,000
#	(same 20 domains, same three runners, same properties): each
#	ASan-built runner is several times slower.
# SEE ALSO
#	runner_crash.sh, runner_diskuse.sh, tests/servers/README
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/smtpsink.py"

if [ -n "${MXL_SANITIZE:-}" ]; then N=2000; else N=5000; fi
NDOM=20
RUNNERS=3
DNS_IP=127.0.0.81
MX_IP=127.0.0.82
PREFIX=conc-$$
DOM=conc.test

# ---------------------------------------------------------------- queue

section "queue $N messages for $NDOM domains"
start_servers $NDOM $DOM $DNS_IP $MX_IP
setup conc "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $PORT" \
    "delivery_concurrency = 1"
t0=$(date +%s%N)
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $N $NDOM $PREFIX "d%d.$DOM" 300 4 "$W/map")
say "queued in $(elapsed_ms $t0) ms: $R"
assert_eq "queued=$N unique_ids=$N errors=0" "$R" "submission result"
assert_queue_count $N

# ---------------------------------------------------------------- deliver

section "three runners at once"
t0=$(date +%s%N)
RUNNER_PIDS=
for ((i = 1; i <= RUNNERS; i++)); do
	timeout -k 5 300 "$QUEUERUN" run >"$W/runner$i.out" 2>"$W/runner$i.err" &
	RUNNER_PIDS="$RUNNER_PIDS $!"
	track_pid $!
done
i=0
for p in $RUNNER_PIDS; do
	i=$((i + 1))
	wait "$p"
	assert_eq 0 "$?" "exit status of runner $i ($(head -c 500 "$W/runner$i.err"))"
done
say "drained in $(elapsed_ms $t0) ms"

section "each message delivered exactly once"
assert_queue_empty "after the three runners"
# The sink logs a message before it answers 250, so all are in by now.
R=$("$PYTHON" "$SERVERS/delivery_check.py" "$SINKLOG" "$W/map" "$LOGFILE")
say "$R"
assert_eq "$N $N 0 0 0 1" \
    "$(kv records "$R") $(kv distinct "$R") $(kv missing "$R") $(kv unknown "$R") $(kv duplicates "$R") $(kv max_copies "$R")" \
    "sink: messages, distinct X-Test-Ids, missing, unknown, duplicates, most copies of one"
assert_eq "0 0 0" "$(kv wrong_rcpt "$R") $(kv wrong_qid "$R") $(kv null_sender "$R")" \
    "sink: messages to the wrong recipient, with the wrong queue id, bounces"
assert_eq "$N $N 0 0 0" \
    "$(kv sent_lines "$R") $(kv sent_qids "$R") $(kv sent_missing "$R") $(kv sent_twice "$R") $(kv sent_unknown "$R")" \
    "log: status=sent lines, queue ids sent, ids never sent, ids sent twice, unknown ids"
assert_eq "$N $N 0 0" \
    "$(kv removed_lines "$R") $(kv removed_qids "$R") $(kv removed_twice "$R") $(kv removed_unknown "$R")" \
    "log: removed lines, ids removed, removed twice, unknown"
assert_eq "0 0" "$(kv deferred "$R") $(kv bounced "$R")" "log: deferred and bounced lines"
assert_eq "$N" "$(grep -c 'status=sent' "$LOGFILE")" "status=sent lines in the log"
# Workers log the deliveries; each runner logs its pass and what it
# delivered.
assert_eq "$RUNNERS" "$(grep -Ec 'mxlane/queuerun\[[0-9]+\]: pass done: [1-9][0-9]* recipients' "$LOGFILE")" \
    "runners whose pass delivered mail"

STATS=$("$PYTHON" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["max_active"], s["messages_total"], s["sessions_total"])' "$SINK_STATS")
say "sink: most sessions at once, messages, sessions: $STATS"
set -- $STATS
if [ "$1" -ge 2 ] && [ "$1" -le "$RUNNERS" ]; then
	pass
else
	fail "the sink saw $1 sessions at once; expected 2..$RUNNERS (runners overlapping, one connection each)"
fi
assert_eq "$N" "$2" "messages counted by the sink"
assert_no_traceback


# ---------------------------------------------------------------- lease

section "a claim that outlives its lease is not delivered twice"
SLOW_IP=127.0.0.83
LN=40
start_sink slow --listen $SLOW_IP:@P@ --delay-ms 50 --max-lifetime 300
# The DNS server reads its zone again when the file changes.
ZONE=$SRV/zone
{ cat "$ZONE"; echo "slow0.test MX 10 mx.slow.test"; echo "mx.slow.test A $SLOW_IP"; } >"$ZONE.new"
mv "$ZONE.new" "$ZONE"
setup lease "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $PORT" \
    'delivery_lease_time = "2s"'
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $LN 1 lease-$$ "slow%d.test" 300 1 "$W/map")
assert_eq "queued=$LN unique_ids=$LN errors=0" "$R" "submission result (lease)"
timeout -k 5 120 "$QUEUERUN" run >"$W/r1.out" 2>"$W/r1.err" &
r1=$!
track_pid $r1
sleep 3
timeout -k 5 120 "$QUEUERUN" run >"$W/r2.out" 2>"$W/r2.err" &
r2=$!
track_pid $r2
wait $r1
assert_eq 0 "$?" "exit status of the first runner"
wait $r2
assert_eq 0 "$?" "exit status of the second runner"
R=$("$PYTHON" "$SERVERS/delivery_check.py" "$SINKLOG" "$W/map" "$LOGFILE")
say "$R"
assert_eq "$LN $LN 0 0 0" \
    "$(kv records "$R") $(kv distinct "$R") $(kv missing "$R") $(kv unknown "$R") $(kv duplicates "$R")" \
    "sink: messages, distinct X-Test-Ids, missing, unknown (empty), duplicates"
assert_queue_empty "after the lease runs"

section "the claims of a stopped runner come back when its lease runs out"
SN=20
setup stopped "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $PORT" \
    'delivery_lease_time = "3s"'
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $SN 1 stop-$$ "slow%d.test" 300 1 "$W/map")
assert_eq "queued=$SN unique_ids=$SN errors=0" "$R" "submission result (stopped runner)"
"$QUEUERUN" run >"$W/r1.out" 2>"$W/r1.err" &
r1=$!
track_pid $r1
sleep 1
kill -STOP "$r1"
t0=$(date +%s)
timeout -k 5 120 "$QUEUERUN" run >"$W/r2.out" 2>"$W/r2.err"
assert_eq 0 "$?" "exit status of the runner started after the first was stopped"
# What the stopped runner had claimed comes due when its 3 s lease runs
# out: a pass after that delivers it.
sleep 4
timeout -k 5 120 "$QUEUERUN" run >"$W/r3.out" 2>"$W/r3.err"
assert_eq 0 "$?" "exit status of the pass after the lease ran out"
kill -KILL "$r1"
kill -CONT "$r1" 2>/dev/null
wait "$r1" 2>/dev/null
say "the second runner finished $(( $(date +%s) - t0 )) s after the first was stopped"
assert_queue_empty "after the second runner (the first still stopped)"

finish
