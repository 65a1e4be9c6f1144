#!/bin/sh
# NAME
#	bench/run.sh - submission throughput and latency (`make bench`)
# SYNOPSIS
#	MXL_BUILD=/abs/build/tree sh tests/bench/run.sh
# DESCRIPTION
#	Measures what the issue asks for, each submission a separate
#	`sendmail -t -i` process with a 4096-byte message and a durable
#	commit (the product's normal path; nothing is relaxed for the
#	benchmark):
#
#	  - latency of one submission at concurrency 1: p50 and p99 over
#	    BENCH_LATENCY_N submissions (default 1000);
#	  - submissions per second at 1, 8, 32 and 64 concurrent
#	    submitters, each level for BENCH_SECONDS (default 5) on a fresh
#	    spool, with p50 and p99 latency at each.
#
#	Submissions write into the maildrop; nothing picks them up during
#	a level (no runner), which is what a host without a daemon sees
#	between two cron passes.
#
#	Immediate delivery is switched off so that only submission is
#	timed. After each level the queue must hold exactly the number of
#	successful submissions (checked with mailq), or the run fails.
#	The driver, submit_bench.c, is compiled into the scratch directory.
# ENVIRONMENT
#	MXL_BUILD	build tree holding sendmail/sendmail (default: source)
#	BENCH_DIR	scratch directory (default: a new one under /tmp),
#			removed at the end
#	BENCH_SECONDS, BENCH_LATENCY_N, BENCH_LEVELS ("1 8 32 64")
#	BENCH_SUBMIT_ONLY	1: skip the drain benchmarks
# EXIT STATUS
#	0 when every level ran without a failed submission and the queue
#	counts matched; the timing aims are reported, not enforced.
set -u

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${MXL_BUILD:-$src}
SENDMAIL=$build/sendmail/sendmail
QUEUERUN=$build/queuerun/queuerun
seconds=${BENCH_SECONDS:-5}
latency_n=${BENCH_LATENCY_N:-1000}
levels=${BENCH_LEVELS:-1 8 32 64}

if [ ! -x "$SENDMAIL" ]; then
	echo "bench: $SENDMAIL is not built (run make first)" >&2
	exit 1
fi
if [ -n "${BENCH_DIR:-}" ]; then
	mkdir -p "$BENCH_DIR" || exit 1
	dir=$(mktemp -d "$BENCH_DIR/mxl-bench.XXXXXX") || exit 1
else
	dir=$(mktemp -d "${TMPDIR:-/tmp}/mxl-bench.XXXXXX") || exit 1
fi
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM HUP

${CC:-cc} -O2 -Wall -Wextra -o "$dir/submit_bench" "$src/tests/bench/submit_bench.c" || {
	echo "bench: cannot compile the driver" >&2
	exit 1
}

# A 4096-byte message: headers, then base64-looking body lines.
{
	printf 'From: Bench <bench@sender.example>\n'
	printf 'To: Recipient <rcpt@rcpt.example>\n'
	printf 'Subject: mxlane benchmark message\n'
	printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n'
	i=0
	while [ "$i" -lt 60 ]; do
		printf '%076d\n' "$i" | tr '0-9' 'A-J'
		i=$((i + 1))
	done
} | head -c 4095 >"$dir/message"
printf '\n' >>"$dir/message"
msg_size=$(wc -c <"$dir/message" | tr -d ' ')

# new_spool NAME: a fresh spool and config, exported as MXLANE_CONFIG
new_spool() {
	mkdir -p "$dir/$1/spool"
	: >"$dir/$1/aliases"
	cat >"$dir/$1/mxlane.conf" <<EOF
spool_directory = "$dir/$1/spool"
myhostname = "bench.example.org"
myorigin = "example.org"
alias_maps = "$dir/$1/aliases"
log_file = "$dir/$1/mxlane.log"
immediate_delivery = false
queuerun_path = "$QUEUERUN"
EOF
	MXLANE_CONFIG=$dir/$1/mxlane.conf
	export MXLANE_CONFIG
	# Create the environment, so no level times the first-ever open.
	printf 'To: warm@rcpt.example\n\nwarm\n' | "$SENDMAIL" -t -i
}

# queued: the request count from mailq's trailer
queued() {
	"$SENDMAIL" -bp | sed -n 's/^-- [0-9]* Kbytes in \([0-9]*\) Requests\{0,1\}\.$/\1/p'
}

# run_level NAME CONCURRENCY SECONDS MAX-PER-WORKER: prints the driver
# line (it runs in $(...), so a failure is noted in a file)
run_level() {
	new_spool "$1" || { touch "$dir/failed"; return; }
	line=$("$dir/submit_bench" "$SENDMAIL" "$dir/message" "$2" "$3" "$4") || {
		echo "bench: driver failed at concurrency $2" >&2
		touch "$dir/failed"
		return
	}
	set -- $line
	if [ "$3" -ne 0 ]; then
		echo "bench: $3 submissions failed at concurrency $1" >&2
		touch "$dir/failed"
	fi
	q=$(queued)
	if [ "$q" != $(($2 + 1)) ]; then
		echo "bench: $2 submissions succeeded but mailq counts ${q:-nothing} (minus 1 warm-up)" >&2
		touch "$dir/failed"
	fi
	echo "$line"
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
fs=$(df -PT "$dir" | awk 'NR == 2 { print $2 " on " $1 }')
echo "mxlane submission benchmark"
echo "  message:   $msg_size bytes, sendmail -t -i, one process per message, durable commit"
echo "  machine:   $(nproc) CPUs ($cpu), $(uname -sr), spool on $fs"
echo "  binary:    $SENDMAIL"
echo

lat=$(run_level latency 1 600 "$latency_n")
tput=
for c in $levels; do
	tput="$tput
$(run_level "c$c" "$c" "$seconds" $((400000 / c)))"
done

echo "Latency of one sendmail -t -i at concurrency 1 ($latency_n submissions):"
echo "$lat" | awk '{ printf "  p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms\n", $6, $7, $8, $9 }'
echo
echo "Throughput (${seconds}s per level, fresh spool each):"
printf '  %-11s %11s %7s %9s %12s %8s %8s\n' concurrency submissions errors seconds "subs/s" "p50 ms" "p99 ms"
echo "$tput" | awk 'NF == 9 { printf "  %-11s %11s %7s %9.2f %12.1f %8.2f %8.2f\n", $1, $2, $3, $4, $5, $6, $8 }'
echo
echo "$lat" | awk '{ printf "Aim: p50 under 3 ms at concurrency 1: %s (%.2f ms)\n", ($6 < 3 ? "met" : "NOT met"), $6 }'
echo "$tput" | awk '$1 == 8 { r8 = $5 } $1 == 64 { r64 = $5; p50 = $6; p99 = $8 }
    END {
	if (r8 == "" || r64 == "") exit
	printf "Aim: rate at 64 submitters at least the rate at 8: %s (%.0f/s vs %.0f/s)\n", (r64 >= r8 ? "met" : "NOT met"), r64, r8
	printf "Aim: p99 at 64 under 20 x p50: %s (%.2f ms vs %.2f ms)\n", (p99 < 20 * p50 ? "met" : "NOT met"), p99, p50
	printf "Aim: 1000 submissions/s at 64 concurrent: %s (%.0f/s)\n", (r64 >= 1000 ? "met" : "NOT met"), r64
    }'
ok=0
[ -e "$dir/failed" ] && ok=1
[ "${BENCH_SUBMIT_ONLY:-0}" = 1 ] && exit $ok
echo
MXL_BUILD=$build bash "$src/tests/bench/drain_bench.sh" || ok=1
# Issue 4: the same drain routed through 20 providers over 1,000 domains.
echo
MXL_BUILD=$build BENCH_DOMAINS=1000 BENCH_PROVIDERS=20 \
    BENCH_SIZES=${BENCH_ROUTED_SIZES:-100000} \
    bash "$src/tests/bench/drain_bench.sh" || ok=1
# Issue 8: one run against MX hosts a round trip away.
echo
MXL_BUILD=$build bash "$src/tests/bench/roundtrip_bench.sh" || ok=1
exit $ok
