#!/bin/sh
# NAME
#	run.sh - run mxlane's unit and integration tests
# SYNOPSIS
#	MXL_BUILD=/abs/build/tree sh tests/run.sh [PATTERN]
# DESCRIPTION
#	Runs every unit test program $MXL_BUILD/tests/unit/test_* and every
#	tests/integration/*.sh script (with bash), one at a time, each with
#	standard input from /dev/null, its own scratch directory
#	(MXL_SCRATCH, removed when the test passes, kept when it fails) and a
#	time limit (MXL_TEST_TIMEOUT seconds, default 600). Each test prints
#	one line, "PASS name" or "FAIL name" followed by the tail of its
#	output; the run ends with exactly one line "N passed, N failed".
#
#	PATTERN, when given, is a shell pattern matched anywhere in the test
#	name ("unit/test_address", "integration/cli").
#
#	A unit test whose source tests/unit/test_X.c exists but whose program
#	was not built counts as a failure, not as a skip.
# EXIT STATUS
#	0 when at least one test ran and none failed, 1 otherwise.
# ENVIRONMENT
#	MXL_BUILD		build tree holding sendmail/sendmail etc.
#				(default: the source tree)
#	MXL_TEST_TIMEOUT	per-test limit in seconds (default 600)
#	MXL_KEEP		keep every scratch directory when set to 1
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MXL_BUILD:-$src}
case $build in
/*) ;;
*) build=$(cd "$build" && pwd) ;;
esac
pattern=${1:-}
limit=${MXL_TEST_TIMEOUT:-600}
tail_lines=${MXL_TAIL_LINES:-60}

export MXL_BUILD="$build" MXL_SRC="$src"
# A caller's config must not steer the tests; each test writes its own.
unset MXLANE_CONFIG

passed=0
failed=0
failed_names=

scratch_root=$(mktemp -d "${TMPDIR:-/tmp}/mxlane-tests.XXXXXX") || {
	echo "run.sh: cannot create a scratch directory" >&2
	exit 1
}

selected() {
	[ -z "$pattern" ] && return 0
	case $1 in
	*$pattern*) return 0 ;;
	esac
	return 1
}

# record NAME STATUS LOGFILE SCRATCHDIR
record() {
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
		echo "PASS $1"
		[ "${MXL_KEEP:-0}" = 1 ] || rm -rf "$4"
		return
	fi
	failed=$((failed + 1))
	failed_names="$failed_names $1"
	if [ "$2" -eq 124 ] || [ "$2" -eq 137 ]; then
		why="timed out after ${limit}s"
	else
		why="exit status $2"
	fi
	echo "FAIL $1 ($why; scratch kept in $4)"
	echo "---- last $tail_lines lines of $1 ----"
	tail -n "$tail_lines" "$3" | sed 's/^/    /'
	echo "---- end of $1 ----"
}

# run_one NAME PROGRAM [ARG...]: PROGRAM runs in its own scratch dir.
run_one() {
	name=$1
	shift
	dir=$scratch_root/$(echo "$name" | tr '/' '_')
	mkdir -p "$dir/tmp"
	log=$dir/output.log
	(
		cd "$dir" || exit 1
		MXL_SCRATCH=$dir/tmp TMPDIR=$dir/tmp \
		    timeout -k 10 "$limit" "$@" </dev/null >"$log" 2>&1
	)
	record "$name" $? "$log" "$dir"
}

# Unit tests: every built program, plus any whose source exists but was
# not built (that is a failure of the build, reported as such).
for c in "$src"/tests/unit/test_*.c; do
	[ -e "$c" ] || continue
	base=$(basename "$c" .c)
	selected "unit/$base" || continue
	prog=$build/tests/unit/$base
	if [ -f "$prog" ] && [ -x "$prog" ]; then
		run_one "unit/$base" "$prog"
	else
		dir=$scratch_root/unit_$base
		mkdir -p "$dir"
		echo "run.sh: $prog was not built (source $c exists)" \
		    >"$dir/output.log"
		record "unit/$base" 1 "$dir/output.log" "$dir"
	fi
done
for prog in "$build"/tests/unit/test_*; do
	if [ ! -f "$prog" ] || [ ! -x "$prog" ]; then continue; fi
	base=$(basename "$prog")
	# built from a source that is gone, or handled above
	[ -e "$src/tests/unit/$base.c" ] && continue
	selected "unit/$base" || continue
	run_one "unit/$base" "$prog"
done

for script in "$src"/tests/integration/*.sh; do
	[ -e "$script" ] || continue
	base=$(basename "$script" .sh)
	selected "integration/$base" || continue
	run_one "integration/$base" bash "$script"
done

[ "${MXL_KEEP:-0}" = 1 ] || rmdir "$scratch_root" 2>/dev/null

if [ $((passed + failed)) -eq 0 ]; then
	echo "run.sh: no test matched${pattern:+ '$pattern'}" >&2
	echo "0 passed, 0 failed"
	exit 1
fi
[ "$failed" -eq 0 ] || echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
