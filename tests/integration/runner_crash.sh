#!/bin/bash
# NAME
#	runner_crash - kill -9 queue runners at random moments: nothing is
#	lost, duplicates stay within the transactions in flight
# DESCRIPTION
#	Queues 5,000 one-recipient messages (each with its own X-Test-Id)
#	for 20 domains whose MX is the test sink, then ten times starts a
#	`queuerun run` (delivery_concurrency = 8: eight delivery workers)
#	and kills it and its workers with SIGKILL after a random 20-250 ms
#	(a runner that exits by itself before its kill is not counted, and
#	another is started, also when it exits in the instant before its kill;
#	at most 80 starts). delivery_lease_time is 3 s,
#	so the recipients a killed runner had claimed are due again 3 s
#	later. After the kills, `queuerun run --flush` passes (at most 40,
#	one a second, 150 s in all) drain the queue. Asserts:
#	  - every submission was queued (5,000 unique queue ids);
#	  - ten runners were killed while running, with mail still queued
#	    after the last kill (the kills fell in the middle of the drain);
#	    every other runner exits 0;
#	  - after every kill the next process opens the spool with no
#	    manual recovery: mailq exits 0 (within 60 s) and lists the
#	    queue, and every later runner exits 0;
#	  - nothing is lost: every X-Test-Id reached the sink, each to its
#	    own recipient and with the Message-ID of its queue id; nothing
#	    unknown arrived, no bounce was made, no recipient was deferred
#	    or bounced, every queue id has a status=sent line and none is
#	    removed twice;
#	  - duplicates (copies beyond the first) number at most the kills
#	    times the SMTP transactions one runner can have in flight, and
#	    that is eight, one per worker: a worker has one connection at a
#	    time, libESMTP sends a message's content only after the 354 to
#	    its DATA, which comes after the reply to the previous message's
#	    final dot, and the worker commits each message's result (the
#	    done callback, one transaction) as soon as libESMTP reads that
#	    reply. So at a kill at most one message per worker can have been
#	    accepted by the sink without its result being committed. A duplicate has the same sha256 as
#	    its first copy;
#	  - mailq says "Mail queue is empty" at the end.
#	The kill delays come from a seed printed at the start; MXL_SEED
#	replays the delays (not the timing of everything else).
#	Under MXL_SANITIZE=1 3,000 messages are queued instead of 5,000
#	(still ten kills in the middle of the drain, same properties).
# SEE ALSO
#	runner_concurrency.sh, runner_diskuse.sh, stress_crash.sh
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/smtpsink.py"

if [ -n "${MXL_SANITIZE:-}" ]; then N=3000; else N=5000; fi
NDOM=20
KILLS=10
DNS_IP=127.0.0.83
MX_IP=127.0.0.84
PREFIX=crash-$$
DOM=crash.test
SEED=${MXL_SEED:-$(date +%s)}

# ---------------------------------------------------------------- helpers

# The killer: starts runners one at a time and SIGKILLs each after a
# random delay; after each, mailq must work. Prints key=value, and one
# line per kill on standard error.
cat >"$T/killer.py" <<'PY'
import os, random, signal, subprocess, sys, time
QUEUERUN, SENDMAIL, SINKLOG = sys.argv[1:4]
KILLS, SEED = int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(SEED)
deadline = time.monotonic() + 150
def delivered():
    with open(SINKLOG, "rb") as f:
        return sum(1 for l in f if l.startswith(b'{"type":"message"'))
kills = starts = self_exits = bad_exit = bad_mailq = 0
at_kill = []
while kills < KILLS and starts < 80 and time.monotonic() < deadline:
    starts += 1
    try:
        # A session of its own: the kill takes the runner and every
        # delivery worker at once.
        p = subprocess.Popen([QUEUERUN, "run"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        bad_exit += 1
        sys.stderr.write("cannot start %s: %s\n" % (QUEUERUN, e))
        break
    time.sleep(rng.uniform(0.02, 0.25))
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    _, err = p.communicate()
    if p.returncode == -9:
        kills += 1
        at_kill.append(delivered())
        sys.stderr.write("kill %d: runner %d, %d messages at the sink\n"
                         % (kills, p.pid, at_kill[-1]))
    else:
        # Exited by itself, perhaps in the moment between poll() and
        # the kill: not a kill, and it must have exited 0.
        self_exits += 1
        if p.returncode != 0:
            bad_exit += 1
            sys.stderr.write("runner %d exited %d: %r\n"
                             % (p.pid, p.returncode, err[:300]))
        # Nothing was due: what the killed runners claimed comes back
        # when its lease runs out (3 s); the next runner waits for some.
        time.sleep(rng.uniform(0.3, 1.0))
    # The next process must open the spool without manual recovery.
    try:
        q = subprocess.run([SENDMAIL, "-bp"], capture_output=True, timeout=60)
        if q.returncode != 0 or not (b" Request" in q.stdout or
                                     b"Mail queue is empty" in q.stdout):
            bad_mailq += 1
            sys.stderr.write("mailq exited %d: %r\n"
                             % (q.returncode, q.stderr[:300]))
    except subprocess.TimeoutExpired:
        bad_mailq += 1
        sys.stderr.write("mailq hung after kill %d\n" % kills)
print("kills=%d starts=%d self_exits=%d bad_exit=%d bad_mailq=%d first=%d last=%d"
      % (kills, starts, self_exits, bad_exit, bad_mailq,
         at_kill[0] if at_kill else -1, at_kill[-1] if at_kill else -1))
PY

# ---------------------------------------------------------------- queue

section "queue $N messages for $NDOM domains (seed $SEED)"
start_servers $NDOM $DOM $DNS_IP $MX_IP
setup crash "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $PORT" \
    "delivery_lease_time = \"3s\"" "minimal_backoff_time = \"1s\"" \
    "delivery_concurrency = 8"
t0=$(date +%s%N)
R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $N $NDOM $PREFIX "d%d.$DOM" 300 4 "$W/map")
say "queued in $(elapsed_ms $t0) ms: $R"
assert_eq "queued=$N unique_ids=$N errors=0" "$R" "submission result"
assert_queue_count $N

# ---------------------------------------------------------------- kill

section "kill -9 a runner $KILLS times"
t0=$(date +%s%N)
R=$("$PYTHON" "$T/killer.py" "$QUEUERUN" "$SENDMAIL" "$SINKLOG" $KILLS "$SEED")
say "$R ($(elapsed_ms $t0) ms)"
assert_eq "$KILLS 0 0" "$(kv kills "$R") $(kv bad_exit "$R") $(kv bad_mailq "$R")" \
    "runners killed while running, runners with another exit status, failed mailq runs"
LAST=$(kv last "$R")
LEFT=$(queue_count)
say "messages at the sink at the last kill: $LAST of $N; still queued: $LEFT"
if [ "$LAST" -ge 0 ] && [ "$LAST" -lt "$N" ] && [ "$LEFT" -gt 0 ]; then
	pass
else
	fail "the kills did not fall in the middle of the drain" \
	    "messages at the sink at the last kill: $LAST of $N; still queued: $LEFT"
fi

# ---------------------------------------------------------------- drain

section "drain with run --flush passes"
t0=$(date +%s%N)
passes=0
end=$((SECONDS + 150))
while [ "$passes" -lt 40 ] && [ "$SECONDS" -lt "$end" ]; do
	passes=$((passes + 1))
	assert_exit 0 "$QUEUERUN" run --flush
	[ "$(queue_count)" -eq 0 ] && break
	sleep 1
done
say "drained in $passes passes, $(elapsed_ms $t0) ms"
assert_queue_empty "after the drain"

section "nothing lost, duplicates within the bound"
R=$("$PYTHON" "$SERVERS/delivery_check.py" "$SINKLOG" "$W/map" "$LOGFILE")
say "$R"
assert_eq "$N 0 0 0 0" \
    "$(kv distinct "$R") $(kv missing "$R") $(kv unknown "$R") $(kv dup_sha_differs "$R") $(kv null_sender "$R")" \
    "sink: distinct X-Test-Ids, missing, unknown, duplicates whose content differs, bounces"
assert_eq "0 0" "$(kv wrong_rcpt "$R") $(kv wrong_qid "$R")" \
    "sink: messages to the wrong recipient, with the wrong queue id"
DUPS=$(kv duplicates "$R")
# Eight workers, one connection each, one transaction in flight each: see
# DESCRIPTION.
BOUND=$((KILLS * 8))
if [ "$DUPS" -le "$BOUND" ]; then
	pass
else
	fail "$DUPS duplicate deliveries after $KILLS kills; at most $BOUND allowed (one in-flight transaction per worker and kill)"
fi
assert_eq "$((N + DUPS))" "$(kv records "$R")" "messages at the sink (distinct plus duplicates)"
assert_eq "$N 0 0 0 0" \
    "$(kv sent_qids "$R") $(kv sent_missing "$R") $(kv sent_unknown "$R") $(kv deferred "$R") $(kv bounced "$R")" \
    "log: ids with status=sent, ids without, unknown ids, deferred lines, bounced lines"
SENT_TWICE=$(kv sent_twice "$R")
if [ "$SENT_TWICE" -le "$DUPS" ]; then
	pass
else
	fail "$SENT_TWICE queue ids logged as sent twice, but only $DUPS duplicates reached the sink"
fi
REMOVED=$(kv removed_qids "$R")
assert_eq "0 0" "$(kv removed_twice "$R") $(kv removed_unknown "$R")" \
    "log: ids removed twice, unknown ids removed"
# A kill between a removal's commit and its log line costs the line.
if [ "$REMOVED" -ge $((N - KILLS)) ] && [ "$REMOVED" -le "$N" ]; then
	pass
else
	fail "$REMOVED queue ids have a removed line; expected $((N - KILLS))..$N"
fi
say "duplicates: $DUPS (bound $BOUND); queue ids logged as sent twice: $SENT_TWICE"
assert_no_traceback

finish
