#!/bin/bash
# NAME
#	runner_compact - a drained spool gives its disk back by itself
# DESCRIPTION
#	Queues 3,000 one-recipient 4 KB messages for 20 domains whose MX is
#	the test sink, moves them from the maildrop into the queue (queuerun
#	pickup, to measure the full tables), drains them with one `queuerun
#	run`, and checks,
#	with no admin command, that the runner compacted the spool at the
#	end of its pass (queuerun(8), "Giving the disk back"):
#	  - every message was delivered and the queue is empty;
#	  - the log says "spool compacted";
#	  - the tables (*.db) take at most twice what they took in the
#	    empty spool, against well over ten times that when full;
#	  - the whole spool directory is at most twice its empty size plus
#	    what a new spool has not written yet but any used one holds:
#	    the region files (fixed by the configuration compiled in: at
#	    most 16 MiB, checked) and one current log file (8 MiB at most).
#	Then, to show that compaction is safe while others work, the same
#	is done again with `queuerun compact` run over and over during the
#	submissions and the drain: each message is delivered exactly once.
#	Disk use is du -k per file (allocated blocks, what df sees).
#	Under MXL_SANITIZE=1, 1,500 messages instead of 3,000.
# SEE ALSO
#	runner_diskuse.sh
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/smtpsink.py"

if [ -n "${MXL_SANITIZE:-}" ]; then N=1500; else N=3000; fi
NDOM=20
SIZE=3900
DNS_IP=127.0.0.87
MX_IP=127.0.0.88
PREFIX=compact-$$
DOM=compact.test
LOG_MAX_KB=8192		# spool.c: set_lg_max(8 MiB)
REGIONS_MAX_KB=16384	# spool.c: an 8 MiB cache, 1 MiB log buffer, locks

# kb CLASS: KiB on disk of the spool's tables, logs or regions (__db.*)
kb() {
	local f t=0
	for f in "$SPOOL"/*; do
		[ -f "$f" ] || continue
		case $1:${f##*/} in
		tables:*.db | logs:log.* | regions:__db.*)
			t=$((t + $(du -k "$f" | cut -f1))) ;;
		esac
	done
	echo "$t"
}
du_kb() { du -sk "$SPOOL" | cut -f1; }

# delivered PREFIX: "distinct total" X-Test-Ids starting with PREFIX
delivered() {
	"$PYTHON" -c '
import json, sys
ids = []
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("type") == "message" and (r.get("x_test_id") or "").startswith(sys.argv[2]):
        ids.append(r["x_test_id"])
print(len(set(ids)), len(ids))' "$SINKLOG" "$1"
}

# cycle TAG: queue N messages, drain them with one pass; prints a row
cycle() {
	local tag=$1 full t0 r
	r=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $N $NDOM "$PREFIX-$tag" \
	    "d%d.$DOM" $SIZE 4 "$W/map-$tag")
	assert_eq "queued=$N unique_ids=$N errors=0" "$r" "$tag: submission result"
	# The messages wait in the maildrop until a runner picks them up
	# (no immediate delivery: the default priority lane would start a
	# runner from the submitters, which could drain the queue before it
	# is measured); picked up first, they show what the tables take
	# when full.
	assert_exit 0 "$QUEUERUN" pickup
	FULL=$(du_kb) FULL_TABLES=$(kb tables)
	t0=$(date +%s%N)
	assert_exit 0 "$QUEUERUN" run
	say "$tag: drained in $(elapsed_ms "$t0") ms"
	assert_queue_empty "$tag: after the drain"
	assert_eq "$N $N" "$(delivered "$PREFIX-$tag-")" \
	    "$tag: messages delivered (distinct, in all)"
}

check_sizes() {
	local tag=$1 tables regions logs total nlogs
	tables=$(kb tables) regions=$(kb regions) logs=$(kb logs)
	total=$(du_kb)
	nlogs=$(ls "$SPOOL" | grep -c '^log\.')
	say "$tag: KiB     empty  full  drained"
	say "  tables      $EMPTY_TABLES  $FULL_TABLES  $tables"
	say "  directory   $EMPTY  $FULL  $total (regions $regions, $nlogs log file(s) $logs)"
	if [ "$FULL_TABLES" -gt $((10 * EMPTY_TABLES)) ]; then pass; else
		fail "$tag: the tables took only $FULL_TABLES KiB when full: too little to show anything"
	fi
	if [ "$tables" -le $((2 * EMPTY_TABLES)) ]; then pass; else
		fail "$tag: the tables take $tables KiB after the drain, more than twice the $EMPTY_TABLES KiB of the empty spool" \
		    "$(ls -ls "$SPOOL")"
	fi
	if [ "$regions" -le $REGIONS_MAX_KB ]; then pass; else
		fail "$tag: region files take $regions KiB (at most $REGIONS_MAX_KB expected)"
	fi
	if [ "$nlogs" -le 1 ] && [ "$logs" -le $LOG_MAX_KB ]; then pass; else
		fail "$tag: $nlogs log files ($logs KiB) after compaction; expected the current one only" \
		    "$(ls -ls "$SPOOL")"
	fi
	local limit=$((2 * EMPTY + REGIONS_MAX_KB + LOG_MAX_KB))
	if [ "$total" -le "$limit" ]; then pass; else
		fail "$tag: the spool takes $total KiB after the drain (limit $limit KiB: twice its empty $EMPTY KiB, the regions and one log file)" \
		    "$(ls -ls "$SPOOL")"
	fi
}

section "$N messages queued and drained; the runner compacts by itself"
start_servers $NDOM $DOM $DNS_IP $MX_IP
setup compact "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $PORT" \
    "immediate_delivery = false"
assert_queue_empty "a new spool"
EMPTY=$(du_kb) EMPTY_TABLES=$(kb tables)
cycle one
assert_eq 1 "$(grep -c 'mxlane/queuerun\[.*spool compacted: ' "$LOGFILE")" \
    "compactions the runner logged"
check_sizes one

section "queuerun compact over and over while mail is queued and drained"
# A second, empty spool: its own baseline, the same properties.
setup compact2 "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $PORT" \
    "immediate_delivery = false"
assert_queue_empty "a new spool"
EMPTY=$(du_kb) EMPTY_TABLES=$(kb tables)
STOP=$W/stop-compacting
(
	for ((i = 0; i < 600; i++)); do
		[ -e "$STOP" ] && exit 0
		timeout -k 5 60 "$QUEUERUN" compact >>"$W/compact.out" 2>&1 ||
		    echo "compact failed: $?" >>"$W/compact.out"
		sleep 0.1
	done
) &
COMPACTER=$!
track_pid "$COMPACTER"
cycle two
touch "$STOP"
wait_for 70 gone "$COMPACTER"
assert_not_contains "$(cat "$W/compact.out")" "failed" "queuerun compact during the run"
runs=$(grep -c '^after: ' "$W/compact.out")
if [ "$runs" -ge 5 ]; then pass; else
	fail "queuerun compact ran only $runs times during the submissions and the drain"
fi
say "queuerun compact ran $runs times beside the submitters and the runner"
# The runner's own compaction at the end of its pass may have found the
# loop compacting (one at a time: it skips) or been just before the
# pass's last removals: one more on demand is what an admin's loop ends
# with too.
assert_exit 0 "$QUEUERUN" compact
check_sizes two
assert_no_traceback

finish
