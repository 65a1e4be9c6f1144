#!/bin/sh
# NAME
#	run.sh - run the libFuzzer harnesses, each for a while, on its corpus
# SYNOPSIS
#	FUZZ_SECONDS=60 sh tests/fuzz/run.sh BUILD HARNESS...
# DESCRIPTION
#	Runs BUILD/tests/fuzz/HARNESS for FUZZ_SECONDS seconds (default 60),
#	one harness at a time (the machines are small and shared), with
#	tests/fuzz/corpus/NAME as the seeds (NAME is HARNESS without
#	"fuzz_") and tests/fuzz/NAME.dict as the dictionary when there is
#	one. Inputs libFuzzer finds go to BUILD/fuzz/corpus/NAME, never into
#	the tree, so a later run starts from where this one stopped while the
#	seeds in git stay small and readable. Crash, leak, timeout and
#	out-of-memory inputs go to BUILD/fuzz/artifacts/NAME/, and the tail
#	of the log of a failed run is printed; the whole log is
#	BUILD/fuzz/NAME.log.
#
#	An input that runs longer than FUZZ_TIMEOUT seconds (default 10)
#	is a finding: every parser here is meant to be linear in its input.
#
#	Leak checks use tests/fuzz/lsan.supp, which names each suppression
#	and why it is there.
# EXIT STATUS
#	0 when every harness ran its time without a finding, 1 otherwise.
# ENVIRONMENT
#	FUZZ_SECONDS	run time per harness (default 60)
#	FUZZ_TIMEOUT	per-input time limit in seconds (default 10)
#	FUZZ_FLAGS	more libFuzzer options, e.g. "-jobs=2 -workers=2"
set -u

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: run.sh BUILD HARNESS...}
shift
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
failed=

# halt_on_error and abort_on_error so that each report ends the run
# and libFuzzer keeps the input; UBSan findings too (the objects are
# also built with -fno-sanitize-recover).
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tests/fuzz/lsan.supp:print_suppressions=1}
export ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

for harness in "$@"; do
	name=${harness#fuzz_}
	prog=$build/tests/fuzz/$harness
	work=$build/fuzz/corpus/$name
	arts=$build/fuzz/artifacts/$name
	log=$build/fuzz/$name.log
	if [ ! -x "$prog" ]; then
		echo "FAIL $harness: $prog was not built"
		failed="$failed $harness"
		continue
	fi
	mkdir -p "$work" "$arts"
	# The harness list was expanded when the loop began; reuse "$@".
	set -- -max_total_time="$seconds" -timeout="$timeout" \
	    -artifact_prefix="$arts/" -print_final_stats=1
	if [ -f "$src/tests/fuzz/$name.dict" ]; then
		set -- "$@" -dict="$src/tests/fuzz/$name.dict"
	fi
	echo "  FUZZ    $harness (${seconds}s)"
	# shellcheck disable=SC2086 # FUZZ_FLAGS is a list of options
	if "$prog" "$@" ${FUZZ_FLAGS:-} "$work" "$src/tests/fuzz/corpus/$name" \
	    </dev/null >"$log" 2>&1; then
		# "#N DONE cov: ... exec/s: ...": how far it got.
		grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed "s/^/        /"
	else
		echo "FAIL $harness: see $log; the input is in $arts/"
		tail -n 60 "$log"
		failed="$failed $harness"
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: findings in:$failed"
	exit 1
fi
echo "fuzz: no findings"
