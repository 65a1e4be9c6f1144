#!/bin/bash
# NAME
#	bench/drain_bench.sh - queue runner throughput and memory (`make bench`)
# SYNOPSIS
#	MXL_BUILD=/abs/build/tree bash tests/bench/drain_bench.sh
# DESCRIPTION
#	Queues 20,000 messages of 4096 bytes (as submitted) for 100
#	recipient domains, one recipient each, then drains them with one
#	`queuerun run` and reports messages per second, the largest RSS of
#	one of its processes (/usr/bin/time) and the largest sum of Pss over
#	the runner and its delivery workers (memsample.py); then the same
#	with 200,000 queued. The
#	aims of issue 3 (1,000 messages/s on 2 cores, the large queue
#	within 20% of that rate, peak RSS under 64 MB) are reported, not
#	enforced.
#
#	The MX of every domain is rtsink (tests/servers/rtsink.c, built by
#	`make bench`), a one-thread epoll SMTP sink that only counts, so
#	that the runner is what is measured; BENCH_SINK=smtpsink uses the
#	test sink tests/servers/smtpsink.py instead, for comparison. DNS is
#	tests/servers/dnsserver.py on loopback (the runner's resolver key
#	points at it); the number of queries it answered is reported too.
#	Queueing is parallel `sendmail -bs` sessions (each message its own
#	durable commit) and is timed but is not the point here.
#
#	Disk writes: bytes written per message while queueing (every
#	sendmail -bs process) and while draining (the runner: pickup from
#	the maildrop into the tables, delivery, removal, compaction at the
#	end of the pass), from /proc/PID/io write_bytes minus
#	cancelled_write_bytes of the process that waited for them (the
#	kernel adds a reaped child's counts to its parent's, so the
#	driver's own /proc/self/io covers every sendmail it ran, and a shell
#	around queuerun covers the runner). These count the pages of the
#	page cache each process dirtied, which is what reaches the disk,
#	but not the file system's journal and metadata writes, and not
#	writes of other processes: unlike the disk's counters
#	(/sys/block/DEV/stat), they are not disturbed by anything else the
#	machine does. The spool directory's size (du -sk) is reported
#	with the messages queued, after the drain, and the tables (*.db)
#	alone after it.
#
#	Each drain is bounded by `queuerun run --max-time BENCH_MAX_TIME`
#	(default 600 s); a drain that hits the bound reports the rate of
#	what it delivered and is marked "partial". A run passes when every
#	message the runner said it delivered reached the sink exactly once
#	(sink count equals status=sent lines) and, for a full drain, the
#	queue is empty afterwards.
# ENVIRONMENT
#	MXL_BUILD	build tree holding sendmail/sendmail,
#			queuerun/queuerun and tests/servers/rtsink
#			(default: the source tree)
#	BENCH_LARGE	0 skips the 200,000-message run (it needs about
#			2 GB of disk and several minutes)
#	BENCH_SIZES	the queue sizes to run (default "20000 200000")
#	BENCH_MAX_TIME	seconds one drain may take (default 600)
#	BENCH_SINK	rtsink (default) or smtpsink
#	BENCH_DOMAINS	recipient domains (default 100)
#	BENCH_PROVIDERS	when set, that many provider sections share the
#			domains (by their domains lists), all with a pool
#			of source 127.0.0.1 and a concurrency limit that is
#			never reached: the cost of routing and throttling
#			bookkeeping, compared with the plain drain (issue 4)
#	BENCH_DIR	where the scratch directory goes (default TMPDIR or
#			/tmp); it is removed at the end unless BENCH_KEEP=1
# EXIT STATUS
#	0 when every run delivered correctly; 1 otherwise.
set -u

src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/bench/lib.sh"
build=${MXL_BUILD:-$src}
SENDMAIL=$build/sendmail/sendmail
QUEUERUN=$build/queuerun/queuerun
RTSINK=$build/tests/servers/rtsink
PYTHON=/usr/bin/python3
TIME=/usr/bin/time
NDOM=${BENCH_DOMAINS:-100}
NPROV=${BENCH_PROVIDERS:-0}
MSG_SIZE=4096
DNS_IP=127.0.0.87
MX_IP=127.0.0.88
sizes=${BENCH_SIZES:-20000 200000}
max_time=${BENCH_MAX_TIME:-600}
sink=${BENCH_SINK:-rtsink}

for f in "$SENDMAIL" "$QUEUERUN"; do
	if [ ! -x "$f" ]; then
		echo "drain_bench: $f is not built (run make first)" >&2
		exit 1
	fi
done
if [ ! -x "$TIME" ]; then
	echo "drain_bench: $TIME is missing (apt-get install time)" >&2
	exit 1
fi
case $sink in
rtsink | smtpsink) ;;
*) echo "drain_bench: BENCH_SINK must be rtsink or smtpsink" >&2; exit 1 ;;
esac
if [ "$sink" = rtsink ] && [ ! -x "$RTSINK" ]; then
	echo "drain_bench: $RTSINK is not built (make check-servers, or make bench)" >&2
	exit 1
fi
large_note=
if [ "${BENCH_LARGE:-1}" = 0 ]; then
	sizes=$(for s in $sizes; do [ "$s" -le 20000 ] && echo "$s"; done | tr '\n' ' ')
	large_note="BENCH_LARGE=0: the 200,000-message run was skipped"
fi

bench_scratch drain-bench

# ---------------------------------------------------------------- DNS

{
	for ((d = 0; d < NDOM; d++)); do
		echo "d$d.bench.test MX 10 mx.bench.test"
	done
	echo "mx.bench.test A $MX_IP"
} >"$dir/zone"
start_bench_dns "$dir/zone" $DNS_IP

# ---------------------------------------------------------------- helpers

# The submission driver: N messages of MSG_SIZE bytes in PAR parallel
# `sendmail -bs` sessions; prints the number queued.
cat >"$dir/queue.py" <<'PY'
import re, subprocess, sys, threading
SENDMAIL, N, NDOM, SIZE, PAR = sys.argv[1], *map(int, sys.argv[2:6])
BATCH = 2000                       # messages per sendmail -bs session
body_line = b"%075d\r\n"

def message(i):
    rcpt = b"u%d@d%d.bench.test" % (i, i % NDOM)
    head = (b"From: Bench <bench@sender.example>\r\nTo: <%s>\r\n"
            b"Subject: drain benchmark %d\r\nX-Test-Id: bench-%d\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
            % (rcpt, i, i))
    need = SIZE - len(head)
    lines = b"".join(body_line % k for k in range(need // 77 + 1))
    body = lines[:need - 2] + b"\r\n"
    return rcpt, head + body

queued = [0] * PAR
errors = []

def worker(k):
    for start in range(k * BATCH, N, PAR * BATCH):
        out = [b"EHLO bench.example\r\n"]
        n = 0
        for i in range(start, min(start + BATCH, N)):
            rcpt, data = message(i)
            out.append(b"MAIL FROM:<bench@sender.example>\r\nRCPT TO:<%s>\r\n"
                       b"DATA\r\n%s.\r\n" % (rcpt, data))
            n += 1
        out.append(b"QUIT\r\n")
        p = subprocess.run([SENDMAIL, "-bs"], input=b"".join(out),
                           capture_output=True, timeout=3600)
        ids = re.findall(rb"^250 .*queued as [0-9A-F]{13}\r?$", p.stdout, re.M)
        queued[k] += len(ids)
        if p.returncode != 0 or len(ids) != n:
            errors.append("exit %d, %d of %d queued: %r" % (
                p.returncode, len(ids), n, p.stderr[:200]))
            return

ts = [threading.Thread(target=worker, args=(k,)) for k in range(PAR)]
for t in ts:
    t.start()
for t in ts:
    t.join()
for e in errors[:3]:
    print("queue.py: " + e, file=sys.stderr)
# Every sendmail was reaped by this process: its counts include theirs.
io = dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())
print(sum(queued), int(io["write_bytes"]) - int(io["cancelled_write_bytes"]))
PY

# start_sink: sets SINK_PID, SINK_PORT, SINK_STATS
start_sink() {
	local try
	rm -f "$dir/sink.ready" "$dir/sink.stats"
	SINK_STATS=$dir/sink.stats
	if [ "$sink" = rtsink ]; then
		"$RTSINK" -l $MX_IP:0 -r "$dir/sink.ready" -s "$SINK_STATS" \
		    -w $$ -t $((max_time + 600)) 2>"$dir/sink.err" &
		SINK_PID=$!
		PIDS="$PIDS $SINK_PID"
		wait_for 20 test -s "$dir/sink.ready" || return 1
		SINK_PORT=$(sed -n 's/^port=//p' "$dir/sink.ready")
		return 0
	fi
	for try in 1 2 3 4 5 6; do
		SINK_PORT=$((20000 + RANDOM % 12000))
		"$PYTHON" "$src/tests/servers/smtpsink.py" --listen $MX_IP:$SINK_PORT \
		    --log "$dir/sink.log" --ready-file "$dir/sink.ready" \
		    --stats-file "$SINK_STATS" --watch-pid $$ \
		    --max-lifetime $((max_time + 600)) 2>"$dir/sink.err" &
		SINK_PID=$!
		PIDS="$PIDS $SINK_PID"
		wait_for 20 sh -c "[ -e '$dir/sink.ready' ] || ! kill -0 $SINK_PID 2>/dev/null"
		[ -e "$dir/sink.ready" ] && return 0
		grep -q "cannot listen" "$dir/sink.err" || return 1
	done
	return 1
}

# stop_sink: prints "MESSAGES CONNECTIONS"
stop_sink() {
	kill -TERM "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	if [ "$sink" = rtsink ]; then
		sed -n '1s/.*messages=\([0-9]*\) .*connections=\([0-9]*\) .*/\1 \2/p' "$SINK_STATS"
	else
		"$PYTHON" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["messages_total"], s["sessions_total"])' "$SINK_STATS"
	fi
}

# queued: the request count from mailq's trailer (0 when empty)
queued() {
	local t
	t=$("$SENDMAIL" -bp | tail -1)
	case $t in
	"Mail queue is empty") echo 0 ;;
	*) echo "$t" | sed -n 's/^-- [0-9]* Kbytes in \([0-9]*\) Requests\{0,1\}\.$/\1/p' ;;
	esac
}

# ---------------------------------------------------------------- runs

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
fs=$(df -PT "$dir" | awk 'NR == 2 { print $2 " on " $1 }')
echo "mxlane drain benchmark"
echo "  messages:  $MSG_SIZE bytes as submitted, 1 recipient each, over $NDOM domains, one MX"
[ "$NPROV" -gt 0 ] && echo "  routing:   $NPROV providers (domains lists), pool of source 127.0.0.1, concurrency 50 each"
if [ "$sink" = rtsink ]; then
	echo "  sink:      rtsink (tests/servers/rtsink.c, C, epoll; counts only)"
else
	echo "  sink:      smtpsink (tests/servers/smtpsink.py, Python; logs every message)"
fi
echo "  DNS:       tests/servers/dnsserver.py on $DNS_IP:$DNS_PORT"
echo "  runner:    one '$QUEUERUN run --max-time $max_time'"
echo "  machine:   $(nproc) CPUs ($cpu), $(uname -sr), spool on $fs"
[ -n "$large_note" ] && echo "  note:      $large_note"
echo

failed=0
ROWS=
WROWS=
for n in $sizes; do
	w=$dir/q$n
	mkdir -p "$w/spool"
	: >"$w/aliases"
	start_sink || {
		echo "drain_bench: the sink did not start: $(cat "$dir/sink.err")" >&2
		exit 1
	}
	cat >"$w/mxlane.conf" <<EOF
spool_directory = "$w/spool"
myhostname = "bench.example.org"
myorigin = "example.org"
alias_maps = "$w/aliases"
log_file = "$w/mxlane.log"
resolver = "$DNS_IP:$DNS_PORT"
smtp_port = $SINK_PORT
immediate_delivery = false
queuerun_path = "$QUEUERUN"
EOF
	if [ "$NPROV" -gt 0 ]; then
		echo 'pool bench { source "127.0.0.1" { } }'
		for ((p = 0; p < NPROV; p++)); do
			printf 'provider p%d { pool = "bench" concurrency = 50 domains = {' "$p"
			sep=
			for ((d = p; d < NDOM; d += NPROV)); do
				printf '%s "d%d.bench.test"' "$sep" "$d"
				sep=,
			done
			printf ' } }\n'
		done
	fi >>"$w/mxlane.conf"
	export MXLANE_CONFIG=$w/mxlane.conf

	echo "queueing $n messages..."
	t0=$(date +%s%N)
	set -- $("$PYTHON" "$dir/queue.py" "$SENDMAIL" "$n" $NDOM $MSG_SIZE 4)
	got=${1:-0} submit_wb=${2:-0}
	qms=$((($(date +%s%N) - t0) / 1000000))
	inq=$(queued)
	echo "  queued $got in $((qms / 1000)).$(printf '%03d' $((qms % 1000))) s ($((got * 1000 / (qms + 1))) messages/s); mailq counts ${inq:-?}"
	if [ "$got" != "$n" ] || [ "${inq:-}" != "$n" ]; then
		echo "drain_bench: $n messages to queue, $got queued, mailq counts ${inq:-?}" >&2
		failed=1
		stop_sink >/dev/null
		continue
	fi
	spool_kb=$(du -sk "$w/spool" | cut -f1)
	dns0=$(wc -l <"$dir/dns.log")

	echo "draining with one queuerun run..."
	t0=$(date +%s%N)
	# The shell reaps queuerun, then reads its own counts, theirs added.
	"$TIME" -f "%e %M" -o "$w/time" sh -c '"$1" run --max-time "$2"; rc=$?
	    cat /proc/$$/io >"$3"; exit $rc' sh "$QUEUERUN" "$max_time" \
	    "$w/drain.io" >"$w/run.out" 2>"$w/run.err" &
	runner=$!
	"$PYTHON" "$src/tests/bench/memsample.py" "$runner" >"$w/mem" &
	sampler=$!
	wait "$runner"
	rc=$?
	wait "$sampler"
	pss_kb=$(cut -d' ' -f1 "$w/mem")
	ms=$((($(date +%s%N) - t0) / 1000000))
	drain_wb=$(awk '/^write_bytes:/ { w = $2 } /^cancelled_write_bytes:/ { c = $2 }
	    END { print w - c }' "$w/drain.io")
	after_kb=$(du -sk "$w/spool" | cut -f1)
	tables_kb=$(du -ck "$w"/spool/*.db | tail -1 | cut -f1)
	rss_kb=$(awk 'END { print $2 }' "$w/time")
	dns=$(($(wc -l <"$dir/dns.log") - dns0))
	set -- $(stop_sink)
	sunk=${1:-0} conns=${2:-0}
	sent=$(grep -c 'status=sent' "$w/mxlane.log")
	left=$(queued)
	status=full
	[ "${left:-1}" != 0 ] && status=partial
	rate=$(awk -v m="$sunk" -v t="$ms" 'BEGIN { printf "%.0f", (t > 0 ? m * 1000 / t : 0) }')
	echo "  runner exit $rc in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s: sink $sunk, status=sent $sent, left $left ($status)"
	if [ "$rc" -ne 0 ] || [ "$sunk" != "$sent" ] ||
	    { [ "$status" = full ] && [ "$sunk" != "$n" ]; }; then
		echo "drain_bench: queue of $n: runner exit $rc, sink got $sunk, log says $sent sent, $left left" >&2
		tail -5 "$w/run.err" >&2
		failed=1
	fi
	ROWS="$ROWS$n $sunk $ms $rate $rss_kb $conns $dns $spool_kb $status ${pss_kb:-0}
"
	WROWS="$WROWS$n $submit_wb $drain_wb $spool_kb $after_kb $tables_kb
"
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$w"
	echo
done

echo "Drain of one queuerun run ($sink sink):"
printf '  %9s %10s %9s %9s %12s %12s %12s %10s %12s %12s  %s\n' queued delivered seconds "msgs/s" "peak RSS MB" "Pss sum MB" connections "msgs/conn" "DNS queries" "spool MB" drain
printf '%s' "$ROWS" | awk 'NF == 10 {
	printf "  %9d %10d %9.1f %9d %12.1f %12.1f %12d %10.1f %12d %12.1f  %s\n",
	    $1, $2, $3 / 1000, $4, $5 / 1024, $10 / 1024, $6, ($6 > 0 ? $2 / $6 : 0), $7, $8 / 1024, $9 }'
echo
echo "Disk writes (write_bytes - cancelled_write_bytes of the processes) and spool size:"
printf '  %9s %16s %16s %13s %13s %13s\n' queued "submit KiB/msg" "drain KiB/msg" "spool MiB full" "spool MiB after" "tables MiB after"
printf '%s' "$WROWS" | awk 'NF == 6 {
	printf "  %9d %16.1f %16.1f %13.1f %13.1f %13.1f\n",
	    $1, $2 / $1 / 1024, $3 / $1 / 1024, $4 / 1024, $5 / 1024, $6 / 1024 }'
echo
printf '%s' "$ROWS" | awk -v note="$large_note" '
NF == 10 { n++; q[n] = $1; r[n] = $4; m[n] = $5 / 1024; if ($5 / 1024 > maxm) maxm = $5 / 1024 }
END {
	if (n == 0) exit
	printf "Aim: at least 1,000 messages/s at %d queued: %s (%d/s)\n", q[1], (r[1] >= 1000 ? "met" : "NOT met"), r[1]
	if (n > 1)
		printf "Aim: at %d queued within 20%% of the rate at %d: %s (%d/s vs %d/s, %+.0f%%)\n", q[n], q[1], (r[n] >= 0.8 * r[1] ? "met" : "NOT met"), r[n], r[1], (r[1] > 0 ? (r[n] - r[1]) * 100 / r[1] : 0)
	else
		printf "Aim: rate within 20%% at 200,000 queued: not measured (%s)\n", (note != "" ? note : "one size only")
	printf "Aim: peak RSS under 64 MB at every size: %s (largest %.1f MB)\n", (maxm < 64 ? "met" : "NOT met"), maxm
}'
exit "$failed"
