# NAME
#	bench/lib.sh - what the benchmark scripts share
# SYNOPSIS
#	. "$src/tests/bench/lib.sh"
# DESCRIPTION
#	bench_scratch NAME: makes the scratch directory $dir (under
#	BENCH_DIR, else TMPDIR or /tmp), and a trap that stops every pid
#	in $PIDS and removes $dir at the end, unless BENCH_KEEP=1 (then it
#	says where $dir is).
#
#	wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds;
#	false when SECONDS went by.
#
#	start_bench_dns ZONE ADDRESS: tests/servers/dnsserver.py serving
#	ZONE on ADDRESS and a free port (its log in $dir/dns.log); sets
#	DNS_PORT, or exits 1 when it does not start.
#
#	The benchmarks do not use tests/lib.sh: that is a test harness
#	(assertions, a private HOME, its own scratch tree).

bench_scratch() {
	dir=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/mxl-$1.XXXXXX") || exit 1
	PIDS=
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

bench_cleanup() {
	local p
	for p in $PIDS; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "BENCH_KEEP: the scratch directory is $dir" >&2
	else
		rm -rf "$dir"
	fi
}

wait_for() {
	local n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

start_bench_dns() {
	"$PYTHON" "$src/tests/servers/dnsserver.py" --zone "$1" --address "$2" \
	    --port 0 --port-file "$dir/dns.port" --log "$dir/dns.log" \
	    >"$dir/dns.out" 2>"$dir/dns.err" &
	PIDS="$PIDS $!"
	wait_for 20 test -s "$dir/dns.port" || {
		echo "$(basename "$0" .sh): the DNS server did not start: $(cat "$dir/dns.err")" >&2
		exit 1
	}
	DNS_PORT=$(cat "$dir/dns.port")
}
