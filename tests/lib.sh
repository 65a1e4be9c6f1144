# NAME
#	lib.sh - shared helpers for mxlane's integration tests (bash)
# SYNOPSIS
#	. "$(dirname "$0")/../lib.sh"
#	setup NAME [CONFIG-LINE...]
#	printf '...' | assert_exit 0 "$SENDMAIL" -t -i
#	ID=$(only_id) ; assert_eq "alice@example.org" "$(env_get "$ID" sender)"
#	finish
# DESCRIPTION
#	Sourcing this file sets up a scratch directory ($T; MXL_SCRATCH from
#	tests/run.sh, else a private mktemp directory removed on exit) and the
#	program variables:
#
#	SENDMAIL	$MXL_BUILD/sendmail/sendmail
#	QUEUERUN	$MXL_BUILD/queuerun/queuerun
#	MAILQ		a "mailq" link to SENDMAIL (argv[0] selects the mode)
#	NEWALIASES	a "newaliases" link to SENDMAIL
#
#	setup NAME [LINE...] makes a fresh, empty world in $T/NAME: a spool
#	directory, an aliases file, a log file and a config file naming them
#	(myhostname host.example.org, myorigin example.org, no immediate
#	delivery, queuerun_path the built queuerun) plus the extra config
#	LINEs (a later line overrides an earlier key), and exports MXLANE_CONFIG so both programs and every
#	client that runs the sendmail binary use it. It sets W (the world's
#	directory), CONF, SPOOL, ALIASES and LOGFILE.
#
#	Queue readers: queue_ids (ids from mailq, one a line), queue_count,
#	only_id (asserts exactly one message is queued and prints its id),
#	show ID (queuerun show), env_get ID KEY (an envelope field), env_rcpts
#	ID (recipients, sorted), rcpt_get ID ADDR KEY (a recipient's field),
#	content ID (the stored message), headers ID (the header block,
#	unfolded), hdr ID NAME (values of one header, case-insensitive),
#	hdr_count ID NAME, body ID.
#
#	Assertions: each records one pass or one failure (counted in files,
#	so assertions made in a pipeline's subshell count too) and prints
#	what was expected and what was found on failure. assert_exit CODE
#	CMD... runs CMD (external commands under `timeout`) with the caller's
#	standard input and keeps its output in the files $OUT, $ERR and the
#	status in $RCF for later assertions (last_out, last_err, last_rc).
#	finish prints a summary and exits 1 if any assertion failed or none
#	was made.
#
#	No test may pass by skipping: need_cmd fails the test (not skips it)
#	when a tool is missing, since tests/install-deps.sh installs them.

set -u

MXL_SRC=${MXL_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MXL_BUILD=${MXL_BUILD:-$MXL_SRC}
SENDMAIL=$MXL_BUILD/sendmail/sendmail
QUEUERUN=$MXL_BUILD/queuerun/queuerun
CMD_TIMEOUT=${MXL_CMD_TIMEOUT:-120}
TEST_NAME=$(basename "$0" .sh)

if [ -n "${MXL_SCRATCH:-}" ]; then
	T=$MXL_SCRATCH
	mkdir -p "$T"
else
	T=$(mktemp -d "${TMPDIR:-/tmp}/mxlane-$TEST_NAME.XXXXXX")
	trap 'rm -rf "$T"' EXIT
fi
T=$(cd "$T" && pwd)
# Clients (mutt, git, mailx) read and write under HOME; keep them here.
export HOME=$T/home
mkdir -p "$HOME" "$T/bin"
export LC_ALL=C.UTF-8 TZ=UTC
unset MXLANE_CONFIG

: >"$T/.passes"
: >"$T/.failures"
OUT=$T/last.out
ERR=$T/last.err
RCF=$T/last.rc

ln -sf "$SENDMAIL" "$T/bin/mailq"
ln -sf "$SENDMAIL" "$T/bin/newaliases"
MAILQ=$T/bin/mailq
NEWALIASES=$T/bin/newaliases

# ---------------------------------------------------------------- output

say() { printf '%s\n' "$*"; }

section() { printf '\n== %s: %s\n' "$TEST_NAME" "$*"; }

pass() { echo x >>"$T/.passes"; }

# fail MESSAGE [DETAIL...]: one failed assertion
# (on stderr, so a failure inside $(...) is still seen)
fail() {
	echo x >>"$T/.failures"
	{
		printf 'FAILED: %s\n' "$1"
		shift
		local d
		for d in "$@"; do
			printf '%s\n' "$d" | sed 's/^/    /'
		done
		printf '    (at %s)\n' "$(caller_line)"
	} >&2
}

caller_line() {
	local i
	for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
		if [ "${BASH_SOURCE[$i]}" != "${BASH_SOURCE[0]}" ]; then
			echo "$(basename "${BASH_SOURCE[$i]}"):${BASH_LINENO[$((i - 1))]}"
			return
		fi
	done
	echo "?"
}

# ---------------------------------------------------------------- setup

need_cmd() {
	local c
	for c in "$@"; do
		if command -v "$c" >/dev/null 2>&1; then
			pass
		else
			fail "required program '$c' is missing (tests/install-deps.sh installs it)"
		fi
	done
}

need_file() {
	local f
	for f in "$@"; do
		if [ -e "$f" ]; then
			pass
		else
			fail "required file '$f' is missing (tests/install-deps.sh installs it)"
		fi
	done
}

# write_config FILE SPOOL ALIASES LOGFILE [LINE...]
write_config() {
	local file=$1 spool=$2 aliases=$3 logf=$4
	shift 4
	{
		echo "# written by tests/lib.sh for $TEST_NAME"
		echo "spool_directory = \"$spool\""
		echo "myhostname = \"host.example.org\""
		echo "myorigin = \"example.org\""
		echo "alias_maps = \"$aliases\""
		echo "log_file = \"$logf\""
		# Submission tests must not start delivery: no detached runner
		# (it would look up example.com's MX on the real network) and
		# queue states stay as submitted. A delivery test passes
		# 'immediate_delivery = true' as an extra line: the last
		# value of a key wins.
		echo "immediate_delivery = false"
		echo "queuerun_path = \"$QUEUERUN\""
		local l
		for l in "$@"; do
			echo "$l"
		done
	} >"$file"
}

# setup NAME [CONFIG-LINE...]: a fresh, empty spool and config
setup() {
	W=$T/$1
	shift
	rm -rf "$W"
	mkdir -p "$W/spool"
	chmod 0700 "$W/spool"
	SPOOL=$W/spool
	CONF=$W/mxlane.conf
	ALIASES=$W/aliases
	LOGFILE=$W/mxlane.log
	: >"$ALIASES"
	write_config "$CONF" "$SPOOL" "$ALIASES" "$LOGFILE" "$@"
	export MXLANE_CONFIG=$CONF
}

# ---------------------------------------------------------------- running

# run CMD...: like assert_exit without the assertion
run() {
	local rc
	if [ "$(type -t "$1")" = file ]; then
		timeout -k 5 "$CMD_TIMEOUT" "$@" >"$OUT" 2>"$ERR"
	else
		"$@" >"$OUT" 2>"$ERR"
	fi
	rc=$?
	echo "$rc" >"$RCF"
	return "$rc"
}

last_out() { cat "$OUT"; }
last_err() { cat "$ERR"; }
last_rc() { cat "$RCF"; }

# assert_exit CODE CMD...
assert_exit() {
	local want=$1 got
	shift
	run "$@"
	got=$(last_rc)
	if [ "$got" = "$want" ]; then
		pass
	else
		fail "exit status of: $*" "expected $want, got $got" \
		    "stderr: $(head -c 2000 "$ERR")" "stdout: $(head -c 2000 "$OUT")"
	fi
}

# assert_exit_in "CODE CODE..." CMD...: one of several acceptable codes
assert_exit_in() {
	local want=$1 got
	shift
	run "$@"
	got=$(last_rc)
	if [[ " $want " == *" $got "* ]]; then
		pass
	else
		fail "exit status of: $*" "expected one of $want, got $got" \
		    "stderr: $(head -c 2000 "$ERR")"
	fi
}

# assert_one_line_stderr [NEEDLE]: the last command said exactly one line
# on stderr (and that line contains NEEDLE, case-insensitively)
assert_one_line_stderr() {
	local n
	n=$(wc -l <"$ERR")
	if [ "$n" -eq 1 ] && [ -n "$(tr -d '\n' <"$ERR")" ]; then
		pass
	else
		fail "expected a one-line error on stderr, got $n lines" \
		    "$(head -c 2000 "$ERR")"
	fi
	if [ $# -gt 0 ]; then
		if grep -qiF -- "$1" "$ERR"; then
			pass
		else
			fail "stderr does not mention '$1'" "$(head -c 2000 "$ERR")"
		fi
	fi
}

# ---------------------------------------------------------------- assertions

assert_eq() {
	local want=$1 got=$2 what=${3:-value}
	if [ "$want" = "$got" ]; then
		pass
	else
		fail "$what differs" "expected: [$want]" "got:      [$got]"
	fi
}

assert_ne() {
	local bad=$1 got=$2 what=${3:-value}
	if [ "$bad" != "$got" ]; then
		pass
	else
		fail "$what must not be [$bad]"
	fi
}

# assert_contains HAYSTACK NEEDLE [WHAT]: fixed-string search
assert_contains() {
	local hay=$1 needle=$2 what=${3:-text}
	if [[ $hay == *"$needle"* ]]; then
		pass
	else
		fail "$what does not contain [$needle]" "$(printf '%s' "$hay" | head -c 3000)"
	fi
}

assert_not_contains() {
	local hay=$1 needle=$2 what=${3:-text}
	if [[ $hay != *"$needle"* ]]; then
		pass
	else
		fail "$what contains [$needle] but must not" "$(printf '%s' "$hay" | head -c 3000)"
	fi
}

# assert_match STRING ERE [WHAT]
assert_match() {
	local s=$1 re=$2 what=${3:-text}
	if printf '%s\n' "$s" | grep -Eq -- "$re"; then
		pass
	else
		fail "$what does not match /$re/" "$(printf '%s' "$s" | head -c 3000)"
	fi
}

assert_no_match() {
	local s=$1 re=$2 what=${3:-text}
	if printf '%s\n' "$s" | grep -Eq -- "$re"; then
		fail "$what matches /$re/ but must not" "$(printf '%s' "$s" | head -c 3000)"
	else
		pass
	fi
}

# assert_files_equal EXPECTED-FILE ACTUAL-FILE [WHAT]: byte for byte
assert_files_equal() {
	local what=${3:-content}
	if cmp -s "$1" "$2"; then
		pass
	else
		fail "$what differs byte-wise" "$(cmp "$1" "$2" 2>&1)" \
		    "expected: $(od -c "$1" | head -12)" "got:      $(od -c "$2" | head -12)"
	fi
}

# ---------------------------------------------------------------- the queue

# queue_ids: ids listed by mailq, one a line, in mailq's order
queue_ids() {
	timeout -k 5 "$CMD_TIMEOUT" "$SENDMAIL" -bp 2>/dev/null |
	    grep -E '^[0-9A-Fa-f]{13}([*!]|[[:space:]]|$)' | cut -c1-13
}

queue_count() { queue_ids | wc -l | tr -d ' '; }

# assert_queue_empty [WHAT]: mailq exits 0, lists nothing and says so
assert_queue_empty() {
	local what=${1:-queue} q rc
	q=$(timeout -k 5 "$CMD_TIMEOUT" "$SENDMAIL" -bp 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [[ $q == *"Mail queue is empty"* ]] &&
	    ! printf '%s\n' "$q" | grep -Eq '^[0-9A-Fa-f]{13}'; then
		pass
	else
		fail "$what: expected an empty queue (mailq exit $rc)" "$q"
	fi
}

# assert_queue_count N [WHAT]
assert_queue_count() {
	assert_eq "$1" "$(queue_count)" "${2:-number of queued messages}"
}

# only_id: asserts exactly one queued message and prints its id
only_id() {
	local ids n
	ids=$(queue_ids)
	n=$(printf '%s' "$ids" | grep -c .)
	if [ "$n" -eq 1 ]; then
		pass
	else
		fail "expected exactly one queued message, mailq lists $n" \
		    "$("$SENDMAIL" -bp 2>&1 | head -40)"
	fi
	printf '%s\n' "$ids" | head -1
}

show() { timeout -k 5 "$CMD_TIMEOUT" "$QUEUERUN" show "$1"; }

# envelope ID: the envelope part of show's output
envelope() {
	local -x LC_ALL=C
	show "$1" | sed -n '/^\*\*\* ENVELOPE RECORDS /,/^\*\*\* MESSAGE CONTENTS /p' |
	    sed '1d;$d'
}

# env_get ID KEY: a top-level envelope field ("" for "sender:" of <>)
env_get() {
	envelope "$1" | sed -n "s/^$2:[ ]\{0,1\}//p" | head -1
}

# env_rcpts ID: the recipients, sorted, one a line
env_rcpts() { envelope "$1" | sed -n 's/^recipient: //p' | sort; }

# rcpt_get ID ADDRESS KEY: one field of one recipient
rcpt_get() {
	envelope "$1" | awk -v a="$2" -v k="$3" '
	    /^recipient: / { cur = substr($0, 12); next }
	    /^[^ ]/ { cur = "" }
	    cur == a && index($0, "  " k ": ") == 1 {
		print substr($0, length(k) + 5); exit }'
}

# content ID: the stored message exactly as show prints it
content() {
	local -x LC_ALL=C
	show "$1" | sed -n '/^\*\*\* MESSAGE CONTENTS /,/^\*\*\* END OF MESSAGE /p' |
	    sed '1d;$d'
}

# headers ID: the header block, continuation lines joined (with a space
# for the fold), one header a line
headers() {
	local -x LC_ALL=C
	content "$1" | awk '
	    /^$/ { exit }
	    /^[ \t]/ { if (h != "") { sub(/^[ \t]+/, ""); h = h " " $0 }; next }
	    { if (h != "") print h; h = $0 }
	    END { if (h != "") print h }'
}

# hdr ID NAME: the values of header NAME (case-insensitive), one a line
hdr() {
	local -x LC_ALL=C
	headers "$1" | awk -v n="$2" '
	    BEGIN { n = tolower(n) }
	    { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
		v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v } }'
}

hdr_count() { hdr "$1" "$2" | wc -l | tr -d ' '; }

# body ID: everything after the first empty line
body() { content "$1" | LC_ALL=C sed '1,/^$/d'; }

# assert_hdr ID NAME VALUE: exactly one NAME header, with that value
assert_hdr() {
	local id=$1 name=$2 want=$3
	assert_eq 1 "$(hdr_count "$id" "$name")" "number of $name: headers"
	assert_eq "$want" "$(hdr "$id" "$name" | head -1)" "$name: header"
}

# assert_no_hdr ID NAME
assert_no_hdr() {
	assert_eq 0 "$(hdr_count "$1" "$2")" "number of $2: headers"
}

# assert_rcpts ID ADDR...: exactly these envelope recipients
assert_rcpts() {
	local id=$1
	shift
	assert_eq "$(printf '%s\n' "$@" | sort)" "$(env_rcpts "$id")" \
	    "envelope recipients of $id"
}

# assert_sender ID ADDR ("" for the null sender)
assert_sender() {
	assert_eq "$2" "$(env_get "$1" sender)" "envelope sender of $1"
}

# assert_generated_headers ID: Date and a Message-ID on myhostname exist
assert_generated_headers() {
	assert_eq 1 "$(hdr_count "$1" Date)" "number of Date: headers"
	assert_eq 1 "$(hdr_count "$1" Message-ID)" "number of Message-ID: headers"
	assert_match "$(hdr "$1" Message-ID)" '^<[^<>@ ]+@host\.example\.org>$' \
	    "generated Message-ID"
}

# ---------------------------------------------------------------- the end

finish() {
	local p f
	p=$(wc -l <"$T/.passes" | tr -d ' ')
	f=$(wc -l <"$T/.failures" | tr -d ' ')
	echo
	echo "$TEST_NAME: $p assertions passed, $f failed"
	if [ "$f" -ne 0 ]; then
		exit 1
	fi
	if [ "$p" -eq 0 ]; then
		echo "$TEST_NAME: no assertion was made" >&2
		exit 1
	fi
	exit 0
}
