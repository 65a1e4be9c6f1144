#!/bin/bash
# NAME
#	runner_diskuse - after a drain the spool's disk use returns to what
#	it was before the mail was queued
# DESCRIPTION
#	Three cycles, each queueing 3,000 one-recipient 4 KB messages for
#	20 domains whose MX is the test sink and draining them with
#	`queuerun run`. Disk use is `du -sk` of the whole spool_directory
#	(region files, tables, logs: nothing excluded). BerkeleyDB files
#	keep their pages, so the first fill sets a high-water mark; what
#	must hold is that a drain frees what a fill took, so that the next
#	fill of the same size reuses it. Asserts:
#	  - every cycle delivers all its messages (the sink has each
#	    X-Test-Id) and ends with mailq saying "Mail queue is empty";
#	  - the transaction logs are removed: after each drain at most two
#	    log.* files remain, with at most 16 MiB between them (log files
#	    are 8 MiB at most), and by the end the first log file is gone
#	    (the cycles write enough that at least two were started);
#	  - freed pages are reused: the files other than the logs take at
#	    most 20% more after the third drain than after the first;
#	  - the whole directory returns to near its size before the mail
#	    was queued: after each later drain it is at most 20% larger than
#	    before that cycle's fill (which is the size after the previous
#	    drain), and after the third drain at most 20% larger than after
#	    the first, plus in both cases 8 MiB: exactly one log file is
#	    current after a drain, and how full it is (0 to 8 MiB) depends
#	    only on where in it the cycle happened to end.
#	The sizes are printed as a table.
#	Under MXL_SANITIZE=1 each cycle queues 1,500 messages instead of
#	3,000 (three cycles, same properties and tolerances).
# SEE ALSO
#	runner_concurrency.sh, runner_crash.sh, stress_diskfull.sh
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/smtpsink.py"

if [ -n "${MXL_SANITIZE:-}" ]; then N=1500; else N=3000; fi
NDOM=20
CYCLES=3
SIZE=3900		# body bytes; about 4 KB with the headers
DNS_IP=127.0.0.85
MX_IP=127.0.0.86
PREFIX=disk-$$
DOM=disk.test
LOG_MAX_KB=8192		# spool.c: set_lg_max(8 MiB)

# ---------------------------------------------------------------- helpers

# du_kb: disk use of the whole spool directory, in KiB
du_kb() { du -sk "$SPOOL" | cut -f1; }
# tables_kb: disk use of everything in the spool but the log files
tables_kb() {
	local f t=0
	for f in "$SPOOL"/*; do
		case ${f##*/} in
		log.*) ;;
		*) t=$((t + $(du -sk "$f" | cut -f1))) ;;
		esac
	done
	echo "$t"
}
logs_kb() {
	local f t=0
	for f in "$SPOOL"/log.*; do
		[ -e "$f" ] && t=$((t + $(du -sk "$f" | cut -f1)))
	done
	echo "$t"
}
log_files() { ls "$SPOOL" | grep -c '^log\.'; }

# delivered PREFIX: distinct X-Test-Ids starting with PREFIX at the sink
delivered() {
	"$PYTHON" -c '
import json, sys
ids = set()
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("type") == "message" and (r.get("x_test_id") or "").startswith(sys.argv[2]):
        ids.add(r["x_test_id"])
print(len(ids))' "$SINKLOG" "$1"
}

# ---------------------------------------------------------------- cycles

section "$CYCLES cycles of $N messages, queued then drained"
start_servers $NDOM $DOM $DNS_IP $MX_IP
setup disk "resolver = \"$DNS_IP:$DNS_PORT\"" "smtp_port = $PORT"
assert_queue_empty "a new spool"
EMPTY=$(du_kb)
TABLE=$(printf '%-6s %12s %12s %12s %12s %6s\n' cycle "before KiB" "full KiB" \
    "drained KiB" "tables KiB" logs)
declare -a BEFORE DRAINED TABLES
for ((c = 1; c <= CYCLES; c++)); do
	BEFORE[c]=$(du_kb)
	R=$("$PYTHON" "$SERVERS/queue_bs.py" "$SENDMAIL" $N $NDOM "$PREFIX-$c" "d%d.$DOM" \
	    $SIZE 4 "$W/map$c")
	assert_eq "queued=$N unique_ids=$N errors=0" "$R" "cycle $c: submission result"
	FULL=$(du_kb)
	t0=$(date +%s%N)
	assert_exit 0 "$QUEUERUN" run
	say "cycle $c: drained in $(elapsed_ms $t0) ms"
	left=$(queue_count)
	if [ "$left" -eq 0 ]; then
		assert_queue_empty "cycle $c: after the drain"
	else
		fail "cycle $c: $left messages still queued after the drain" \
		    "$("$SENDMAIL" -bp 2>&1 | head -20)"
	fi
	assert_eq "$N" "$(delivered "$PREFIX-$c-")" "cycle $c: messages delivered"
	DRAINED[c]=$(du_kb)
	TABLES[c]=$(tables_kb)
	nlogs=$(log_files)
	lkb=$(logs_kb)
	TABLE="$TABLE
$(printf '%-6s %12s %12s %12s %12s %6s\n' "$c" "${BEFORE[c]}" "$FULL" \
	    "${DRAINED[c]}" "${TABLES[c]}" "$nlogs ($lkb KiB)")"
	if [ "$nlogs" -ge 1 ] && [ "$nlogs" -le 2 ] && [ "$lkb" -le $((2 * LOG_MAX_KB)) ]; then
		pass
	else
		fail "cycle $c: $nlogs log files ($lkb KiB) after the drain; expected 1 or 2, at most $((2 * LOG_MAX_KB)) KiB" \
		    "$(ls -l "$SPOOL")"
	fi
done
say "disk use of $SPOOL (empty spool: $EMPTY KiB)"
say "$TABLE"

section "logs removed, pages reused, disk use back where it was"
LASTLOG=$(ls "$SPOOL" | sed -n 's/^log\.0*\([0-9][0-9]*\)$/\1/p' | sort -n | tail -1)
say "log files started: ${LASTLOG:-none}; left: $(ls "$SPOOL" | grep '^log\.' | tr '\n' ' ')"
if [ "${LASTLOG:-0}" -lt 2 ]; then
	fail "only ${LASTLOG:-no} log file was started: too little was written to show that logs are removed"
elif [ -e "$SPOOL/log.0000000001" ]; then
	fail "the first log file is still there after $CYCLES cycles" "$(ls -l "$SPOOL")"
else
	pass
fi
limit=$((TABLES[1] * 12 / 10))
if [ "${TABLES[CYCLES]}" -le "$limit" ]; then
	pass
else
	fail "tables grew from ${TABLES[1]} KiB after drain 1 to ${TABLES[CYCLES]} KiB after drain $CYCLES (limit $limit KiB, +20%): freed pages are not reused" \
	    "$TABLE" "$(ls -l "$SPOOL")"
fi
for ((c = 2; c <= CYCLES; c++)); do
	limit=$((BEFORE[c] * 12 / 10 + LOG_MAX_KB))
	if [ "${DRAINED[c]}" -le "$limit" ]; then
		pass
	else
		fail "cycle $c: the spool takes ${DRAINED[c]} KiB after the drain, ${BEFORE[c]} KiB before the fill (limit $limit KiB: +20% and one log file)" \
		    "$TABLE"
	fi
done
limit=$((DRAINED[1] * 12 / 10 + LOG_MAX_KB))
if [ "${DRAINED[CYCLES]}" -le "$limit" ]; then
	pass
else
	fail "the spool grew from ${DRAINED[1]} KiB after drain 1 to ${DRAINED[CYCLES]} KiB after drain $CYCLES (limit $limit KiB: +20% and one log file)" \
	    "$TABLE"
fi
assert_no_traceback

finish
