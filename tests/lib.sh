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
#
#	Processes and time: wait_for SECONDS CMD... (polls CMD, a program
#	or a function, every 0.1 s), gone PID... (none of them runs),
#	track_pid PID... (stopped when the test exits: SIGTERM, SIGKILL
#	after 10 s), on_exit CMD (run when the test exits, after that),
#	now (seconds with microseconds), elapsed_ms T0 (since date +%s%N),
#	pyc EXPR (prints a Python expression), kv KEY LINE (a value from
#	"k=v k=v"). A test that sets its own EXIT trap does all that itself.
#
#	Test servers (tests/servers/, files in $SRV; PYTHON is the python3
#	they need): start_dns ZONEFILE [ADDRESS] (sets DNS_PORT),
#	start_sink NAME ARG... (a test MX; @P@ in ARGs is a free random
#	port; sets PORT, SINK_PID, SINK_DIR, SINKLOG, SINK_STATS, SINK_ERR),
#	start_servers NDOM DOMAIN DNS-IP MX-IP (both, for NDOM domains
#	with one MX), start_exim NAME ADDRESS PORT [OPTION...] (a real Exim
#	on loopback with tests/servers/exim.conf; sets EXIM_DIR),
#	make_ca NAME, make_cert CA NAME DNSNAME... (a test CA and server
#	certificates, made with openssl in $SRV/tls), start_https NAME
#	ADDRESS CERT (tests/servers/httpsserver.py serving $SRV/NAME/root/HOST;
#	sets HTTPS_PORT),
#	assert_no_traceback, sinkq EXPR (Python over the
#	sink's log; tests/servers/sinkq.py), sink_true EXPR, sent_count TAG.
#	start_rtsink NAME ADDR... [-- ARG...] (the C sink tests/servers/rtsink
#	on every ADDR, one free port; sets RT_PORT, RT_PID, RT_DIR, RT_STATS,
#	RT_RECORD, RT_ERR), rt_stats [ADDR] (its stats line, global or for
#	ADDR).
#
#	Delivery: new_id CMD... (prints the ids CMD queued), submit_file
#	FILE ARG... (sets NEWID), message_file TESTID [BODY], queue_bs N
#	SENDER RCPT TAG [ARG...] (N messages over one sendmail -bs),
#	drain_daemon SECONDS, loglines ID ADDR, check_log ID ADDR STATUS
#	DSN-ERE NEEDLE [COUNT], check_rcpt ID ADDR STATE ATTEMPTS,
#	check_gone ID, dsn_table (the DSNs the sink got, into
#	$SRV/dsn.tsv), dsn_rows ID [KIND], check_dsn ID KIND ADDR ACTION
#	STATUS-ERE NEEDLE [REMOTE-MTA]. Routing: route_field OUTPUT KEY,
#	sample_config SMTP-PORT DNS-PORT (the routing issue's sample).

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
fi
T=$(cd "$T" && pwd)
# Clients (mutt, git, mailx) read and write under HOME; keep them here.
export HOME=$T/home
PYTHON=/usr/bin/python3
SERVERS=$MXL_SRC/tests/servers
SRV=$T/servers
mkdir -p "$HOME" "$T/bin" "$SRV"
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

# setid_prefix NAME: makes and prints a directory every user can
# traverse, on a file system that honours set-id bits (run.sh's scratch
# is 0700, and some /tmp are nosuid), for a scratch install with a
# set-id sendmail; fails the test (and prints nothing) if there is none.
setid_prefix() {
	local base d
	for base in /tmp /var/tmp "$MXL_BUILD"; do
		if findmnt -n -o OPTIONS -T "$base" 2>/dev/null | grep -qw nosuid; then
			continue
		fi
		if d=$(mktemp -d "$base/mxl-$1.XXXXXX"); then
			chmod 0755 "$d"
			echo "$d"
			return 0
		fi
	done
	fail "no directory on a file system without nosuid"
	return 1
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

# assert_true SHELL-CONDITION WHAT: the condition (eval'ed) holds
assert_true() {
	if eval "$1"; then
		pass
	else
		fail "not true: $2"
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

# ---------------------------------------------------------------- processes

# wait_for SECONDS CMD...: true once CMD (a program or a function)
# succeeds, tried every 0.1 s; false when SECONDS (whole) have passed
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

# gone PID...: none of these processes is running
gone() {
	local p
	for p in "$@"; do
		! kill -0 "$p" 2>/dev/null || return 1
	done
}

# track_pid PID...: background processes (servers, daemons, runners)
# to stop when the test exits
MXL_PIDS=
track_pid() { MXL_PIDS="$MXL_PIDS $*"; }

# on_exit CMD: a shell command to run when the test exits
MXL_AT_EXIT=()
on_exit() { MXL_AT_EXIT+=("$1"); }

# stop_tracked: SIGTERM to the tracked processes this shell has not yet
# waited for (a pid that was waited for may belong to another process
# by now), SIGKILL to any still there after 10 s
stop_tracked() {
	local p live=
	for p in $(jobs -p); do
		[[ " $MXL_PIDS " != *" $p "* ]] || live="$live $p"
	done
	[ -n "$live" ] || return 0
	# shellcheck disable=SC2086 # one word per pid
	kill -TERM $live 2>/dev/null
	# shellcheck disable=SC2086
	wait_for 10 gone $live || kill -KILL $live 2>/dev/null
	# shellcheck disable=SC2086
	wait $live 2>/dev/null
}

mxl_exit() {
	local c
	stop_tracked
	for c in ${MXL_AT_EXIT[@]+"${MXL_AT_EXIT[@]}"}; do
		eval "$c"
	done
	[ -n "${MXL_SCRATCH:-}" ] || rm -rf "$T"
}
trap mxl_exit EXIT
trap 'exit 143' TERM INT

# now: the time in seconds, with microseconds, without a fork
now() { printf '%s\n' "$EPOCHREALTIME"; }

# elapsed_ms T0: milliseconds since T0 (from date +%s%N)
elapsed_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

# pyc EXPR: prints the Python expression EXPR (arithmetic on shell values)
pyc() { "$PYTHON" -c "print($1)"; }

# kv KEY LINE: the value of KEY in a "k=v k=v" line
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# ---------------------------------------------------------------- test servers

# start_dns ZONEFILE [ADDRESS]: tests/servers/dnsserver.py on ADDRESS
# (127.0.0.1) and a free port, serving ZONEFILE (read again when it is
# replaced); its query log is $SRV/dns.log. Sets DNS_PORT.
start_dns() {
	rm -f "$SRV/dns.port"
	"$PYTHON" "$SERVERS/dnsserver.py" --zone "$1" --address "${2:-127.0.0.1}" \
	    --port 0 --port-file "$SRV/dns.port" --log "$SRV/dns.log" \
	    --watch-pid $$ >"$SRV/dns.out" 2>"$SRV/dns.err" &
	track_pid $!
	if wait_for 20 test -s "$SRV/dns.port"; then
		pass
	else
		fail "DNS server did not start" "$(cat "$SRV/dns.err")"
		finish
	fi
	DNS_PORT=$(cat "$SRV/dns.port")
}

# start_sink NAME ARG...: a test MX, tests/servers/smtpsink.py ARG...,
# with its log, ready, stats and err files in $SRV/NAME. @P@ in ARGs
# becomes one random port (20000-31999; another is tried when it is
# taken). Sets PORT, SINK_PID, SINK_DIR, SINKLOG, SINK_STATS, SINK_ERR.
start_sink() {
	local name=$1 try
	shift
	SINK_DIR=$SRV/$name
	SINKLOG=$SINK_DIR/log
	SINK_STATS=$SINK_DIR/stats
	SINK_ERR=$SINK_DIR/err
	for try in 1 2 3 4 5 6; do
		PORT=$((20000 + RANDOM % 12000))
		rm -rf "$SINK_DIR"
		mkdir -p "$SINK_DIR"
		"$PYTHON" "$SERVERS/smtpsink.py" "${@//@P@/$PORT}" --log "$SINKLOG" \
		    --ready-file "$SINK_DIR/ready" --stats-file "$SINK_STATS" \
		    --watch-pid $$ 2>"$SINK_ERR" &
		SINK_PID=$!
		track_pid "$SINK_PID"
		wait_for 30 sh -c "[ -e '$SINK_DIR/ready' ] || ! kill -0 $SINK_PID 2>/dev/null"
		if [ -e "$SINK_DIR/ready" ]; then
			pass
			return 0
		fi
		if gone "$SINK_PID" && grep -q "in use" "$SINK_ERR"; then
			wait "$SINK_PID"
			continue
		fi
		break
	done
	fail "sink $name did not start" "$(cat "$SINK_ERR" 2>/dev/null)"
	finish
}

# start_rtsink NAME ADDR... [-- ARG...]: tests/servers/rtsink (built by
# make check) listening on every ADDR (127.0.0.0/8) on one free port,
# stopped when the test exits; ARGs go to it as they are (-d 50 for a
# 50 ms round trip). Its files are in $SRV/NAME: ready, stats, record
# (one "ADDR X-Test-Id" line per accepted message), err. Sets RT_PORT,
# RT_PID, RT_DIR, RT_STATS, RT_RECORD, RT_ERR.
start_rtsink() {
	local name=$1 try ls=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		ls+=(-l "$1:0")
		shift
	done
	[ $# -gt 0 ] && shift
	RT_DIR=$SRV/$name
	RT_STATS=$RT_DIR/stats
	RT_RECORD=$RT_DIR/record
	RT_ERR=$RT_DIR/err
	# port 0 is free on the first address; the others may have it taken
	for try in 1 2 3 4 5 6; do
		rm -rf "$RT_DIR"
		mkdir -p "$RT_DIR"
		"$MXL_BUILD/tests/servers/rtsink" "${ls[@]}" -r "$RT_DIR/ready" \
		    -s "$RT_STATS" -R "$RT_RECORD" -w $$ -t 900 "$@" 2>"$RT_ERR" &
		RT_PID=$!
		track_pid "$RT_PID"
		wait_for 10 sh -c "[ -e '$RT_DIR/ready' ] || ! kill -0 $RT_PID 2>/dev/null"
		if [ -e "$RT_DIR/ready" ]; then
			RT_PORT=$(sed -n 's/^port=//p' "$RT_DIR/ready")
			pass
			return 0
		fi
		if gone "$RT_PID" && grep -q "cannot listen" "$RT_ERR"; then
			wait "$RT_PID"
			continue
		fi
		break
	done
	fail "rtsink $name did not start" "$(cat "$RT_ERR" 2>/dev/null)"
	finish
}

# rt_stats [ADDR]: the last rtsink's stats line for ADDR, or its global
# line; while the sink runs, a fresh one (SIGUSR1)
rt_stats() {
	if kill -0 "$RT_PID" 2>/dev/null; then
		rm -f "$RT_STATS"
		kill -USR1 "$RT_PID"
		wait_for 5 test -s "$RT_STATS"
	fi
	if [ $# -eq 0 ]; then
		head -1 "$RT_STATS"
	else
		grep "^addr=$1 " "$RT_STATS"
	fi
}

# start_exim NAME ADDRESS PORT [OPTION-LINE...]: Exim (exim4, Debian's
# exim4-daemon-light) in the foreground on ADDRESS:PORT with
# tests/servers/exim.conf and the OPTION-LINEs, its spool, logs and
# maildirs in a directory of its own (Exim gives up root for its user, so
# that directory cannot be in the private scratch tree; it goes when the
# test exits). Sets EXIM_DIR: maildir/new/* are the messages,
# log/mainlog the log.
start_exim() {
	local name=$1 addr=$2 port=$3 user dir
	shift 3
	need_cmd exim4
	dir=$(mktemp -d /tmp/mxlane-exim-"$name".XXXXXX)
	[ "${MXL_KEEP:-0}" = 1 ] || on_exit "rm -rf '$dir'"
	user=$(id -un)
	[ "$(id -u)" -eq 0 ] && user=Debian-exim
	mkdir -p "$dir/spool" "$dir/log" "$dir/maildir"
	chmod 755 "$dir"
	[ "$(id -u)" -eq 0 ] && chown -R "$user" "$dir/spool" "$dir/log" "$dir/maildir"
	sed -e "s|@DIR@|$dir|g" -e "s|@ADDR@|$addr|" -e "s|@PORT@|$port|" \
	    -e "s|@USER@|$user|" -e '/@EXTRA@/d' "$SERVERS/exim.conf" >"$dir/exim.conf"
	printf '%s\n' "$@" >>"$dir/exim.conf.extra"
	sed -i "/^keep_environment/r $dir/exim.conf.extra" "$dir/exim.conf"
	exim4 -C "$dir/exim.conf" -bdf -oX "$port" >"$dir/out" 2>&1 </dev/null &
	track_pid $!
	EXIM_DIR=$dir
	if wait_for 20 grep -qs 'daemon started' "$dir/log/mainlog"; then
		pass
	else
		fail "exim $name did not start" "$(cat "$dir/out" "$dir/log/"* 2>/dev/null)"
		finish
	fi
}

# make_ca NAME: a test certificate authority, $SRV/tls/NAME.crt and
# NAME.key (EC P-256, made with openssl now, valid for a day)
make_ca() {
	mkdir -p "$SRV/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj "/CN=mxlane test CA $1" -days 1 \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign,cRLSign \
	    -keyout "$SRV/tls/$1.key" -out "$SRV/tls/$1.crt" 2>"$SRV/tls/$1.err" &&
	    pass || fail "make_ca $1" "$(cat "$SRV/tls/$1.err")"
}

# make_cert CA NAME DNSNAME...: a server certificate signed by make_ca's
# CA for the DNSNAMEs (its SAN), $SRV/tls/NAME.crt and NAME.key
make_cert() {
	local ca=$1 name=$2 san="" d
	shift 2
	for d in "$@"; do
		san="$san${san:+,}DNS:$d"
	done
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -subj "/CN=$1" -keyout "$SRV/tls/$name.key" \
	    -out "$SRV/tls/$name.csr" 2>"$SRV/tls/$name.err" &&
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" \
	    >"$SRV/tls/$name.ext" &&
	openssl x509 -req -in "$SRV/tls/$name.csr" -CA "$SRV/tls/$ca.crt" \
	    -CAkey "$SRV/tls/$ca.key" -CAcreateserial -days 1 \
	    -extfile "$SRV/tls/$name.ext" -out "$SRV/tls/$name.crt" \
	    2>>"$SRV/tls/$name.err" &&
	    pass || fail "make_cert $name" "$(cat "$SRV/tls/$name.err")"
}

# start_https NAME ADDRESS CERT-NAME: tests/servers/httpsserver.py on
# ADDRESS and a free port with make_cert's CERT-NAME, serving the files
# under $SRV/NAME/root/HOST for each Host: name
# (mta-sts.DOMAIN/.well-known/mta-sts.txt); its request log is
# $SRV/NAME/log. Sets HTTPS_PORT.
start_https() {
	local dir=$SRV/$1
	mkdir -p "$dir/root"
	rm -f "$dir/port"
	"$PYTHON" "$SERVERS/httpsserver.py" --root "$dir/root" \
	    --cert "$SRV/tls/$3.crt" --key "$SRV/tls/$3.key" --address "$2" \
	    --port 0 --port-file "$dir/port" --log "$dir/log" --watch-pid $$ \
	    >"$dir/out" 2>"$dir/err" &
	track_pid $!
	if wait_for 20 test -s "$dir/port"; then
		pass
	else
		fail "HTTPS server $1 did not start" "$(cat "$dir/err")"
		finish
	fi
	HTTPS_PORT=$(cat "$dir/port")
}

# start_servers NDOM DOMAIN DNS-IP MX-IP: NDOM domains d0.DOMAIN ...
# whose MX is mx.DOMAIN at MX-IP (zone $SRV/zone, DNS server on DNS-IP)
# and one plain sink there (start_sink sink)
start_servers() {
	local d
	{
		for ((d = 0; d < $1; d++)); do
			echo "d$d.$2 MX 10 mx.$2"
		done
		echo "mx.$2 A $4"
	} >"$SRV/zone"
	start_dns "$SRV/zone" "$3"
	start_sink sink --listen "$4:@P@"
}

# assert_no_traceback: no test server wrote a Python traceback
assert_no_traceback() {
	local f=("$SRV"/dns.err "$SRV"/*/err)
	if grep -qs Traceback "${f[@]}"; then
		fail "a test server had a traceback" "$(cat "${f[@]}" 2>/dev/null)"
	else
		pass
	fi
}

# sinkq EXPR: a Python expression over the last sink's log
# (tests/servers/sinkq.py lists what EXPR can use)
sinkq() { "$PYTHON" "$SERVERS/sinkq.py" "$SINKLOG" "$1"; }

# sink_true EXPR: EXPR is True (for wait_for)
sink_true() { [ "$(sinkq "$1")" = True ]; }

# sent_count TAG: messages at the sink whose X-Test-Id starts with TAG-
sent_count() { sinkq "len(tids('$1-'))"; }

# ---------------------------------------------------------------- delivery

# new_id CMD...: runs CMD (a submission); prints the new queue ids
new_id() {
	local before after
	before=$(queue_ids | sort)
	"$@"
	after=$(queue_ids | sort)
	comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep .
}

# submit_file FILE ARG...: queues FILE with sendmail ARGs, asserting
# exit 0 and exactly one new message; sets NEWID
submit_file() {
	local file=$1
	shift
	NEWID=$(new_id assert_exit 0 "$SENDMAIL" "$@" <"$file")
	if [ "$(printf '%s\n' "$NEWID" | grep -c .)" -eq 1 ]; then
		pass
	else
		fail "expected one new queued message after: sendmail $*" "new: [$NEWID]"
	fi
}

# message_file TESTID [BODY]: prints the name of a new small message
# file from alice@src.example with X-Test-Id TESTID
message_file() {
	local f=$SRV/msg.$1
	printf 'From: Alice <alice@src.example>\nSubject: %s %s\nX-Test-Id: %s\n\n%s\n' \
	    "$TEST_NAME" "$1" "$1" "${2:-Hello from $1.}" >"$f"
	echo "$f"
}

# queue_bs N SENDER RCPT TAG [SENDMAIL-ARG...]: queues N messages in one
# sendmail -bs session (tests/servers/bs_stream.py), asserting that
# every one was accepted
queue_bs() {
	local n=$1 sender=$2 rcpt=$3 tag=$4
	shift 4
	"$PYTHON" "$SERVERS/bs_stream.py" "$n" "$sender" "$rcpt" "$tag" >"$SRV/bs.in"
	assert_exit 0 "$SENDMAIL" -bs "$@" <"$SRV/bs.in"
	assert_eq "$n" "$(grep -c '^250 2.0.0 Ok: queued as' "$OUT")" \
	    "messages accepted by sendmail -bs ($tag)"
}

# drain_daemon SECONDS: runs a daemon until the queue is empty (asserted,
# at most SECONDS), then stops it (exit 0 asserted)
drain_daemon() {
	local lim=$1 d
	"$QUEUERUN" run --daemon 1h >"$SRV/daemon.out" 2>&1 &
	d=$!
	track_pid "$d"
	if wait_for "$lim" sh -c "$SENDMAIL -bp 2>/dev/null | grep -q '^Mail queue is empty'"; then
		pass
	else
		fail "the daemon did not empty the queue within $lim s" \
		    "$($SENDMAIL -bp | tail -3)" "$(grep -v 'status=sent\|removed\|from=<\|message-id=\|uid=' "$LOGFILE" | tail -20)"
	fi
	kill -TERM "$d" 2>/dev/null
	wait "$d"
	assert_eq 0 "$?" "daemon exit status after SIGTERM"
}

# loglines ID ADDR: the smtp log lines for one recipient of one message
loglines() { grep -F "mxlane/smtp[" "$LOGFILE" | grep -F ": $1: to=<$2>, "; }

# check_log ID ADDR STATUS DSN-ERE NEEDLE [COUNT]: COUNT (1) smtp log
# lines for ADDR, the last one with that status and dsn, containing NEEDLE
# (fields after the status, such as ", dkim=example.org/s1", are allowed)
check_log() {
	local id=$1 addr=$2 status=$3 dsn=$4 needle=$5 count=${6:-1} l
	l=$(loglines "$id" "$addr")
	assert_eq "$count" "$(printf '%s' "$l" | grep -c .)" "number of smtp log lines for $addr ($id)"
	l=$(printf '%s\n' "$l" | tail -1)
	assert_match "$l" "^[A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [^ ]+ mxlane/smtp\[[0-9]+\]: $id: to=<$addr>, relay=[^,]+, delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=$dsn, status=$status \(.+\)(, [a-z]+=[^ ]+)*$" \
	    "smtp log line for $addr"
	assert_contains "$l" "$needle" "smtp log line for $addr"
}

# check_rcpt ID ADDR STATE ATTEMPTS: queuerun show's view of a recipient
check_rcpt() {
	assert_eq "$3" "$(rcpt_get "$1" "$2" state)" "state of $2 ($1)"
	assert_eq "$4" "$(rcpt_get "$1" "$2" attempts)" "attempts of $2 ($1)"
}

# check_gone ID: the message is removed (show exits 66) and logged so
check_gone() {
	run "$QUEUERUN" show "$1"
	assert_eq 66 "$(last_rc)" "queuerun show $1 exit status (message removed)"
	if grep -qF ": $1: removed" "$LOGFILE"; then pass; else
		fail "no 'removed' log line for $1" "$(grep -F "$1" "$LOGFILE")"
	fi
}

# dsn_table: the DSNs the sink accepted, one line per recipient block,
# into $SRV/dsn.tsv (tests/servers/dsntable.py says the columns)
dsn_table() { "$PYTHON" "$SERVERS/dsntable.py" "$SINKLOG" >"$SRV/dsn.tsv"; }

# dsn_rows ID [KIND]: dsn.tsv's blocks about message ID (of one kind)
dsn_rows() {
	awk -F'\t' -v id="$1" -v k="${2:-}" '$1 == id && (k == "" || $2 == k)' "$SRV/dsn.tsv"
}

# check_dsn ID KIND ADDR ACTION STATUS-ERE DIAG-NEEDLE [REMOTE-MTA]:
# exactly one DSN block of KIND for ADDR of message ID reached
# alice@src.example, with that action, status and diagnostic
check_dsn() {
	local id=$1 kind=$2 addr=$3 act=$4 st=$5 needle=$6 mta=${7:-} rows n
	local to final action status rmta diag
	rows=$(dsn_rows "$id" "$kind" | awk -F'\t' -v a="$addr" '$4 == a')
	n=$(printf '%s' "$rows" | grep -c .)
	assert_eq 1 "$n" "$kind DSN blocks for $addr of $id"
	[ "$n" -ge 1 ] || return
	IFS=$'\t' read -r _ _ to final action status rmta diag <<<"$(printf '%s\n' "$rows" | head -1)"
	assert_eq "alice@src.example $addr $act" "$to $final $action" \
	    "$kind DSN: recipient, final recipient, action"
	assert_match "$status" "$st" "$kind DSN status for $addr"
	assert_contains "$diag" "$needle" "$kind DSN diagnostic for $addr"
	[ -z "$mta" ] || assert_eq "$mta" "$rmta" "$kind DSN Remote-MTA for $addr"
}

# ---------------------------------------------------------------- routing

# route_field OUTPUT KEY: the value of "  KEY: ..." in route output
route_field() { printf '%s\n' "$1" | sed -n "s/^  $2: //p" | head -1; }

# sample_config SMTP-PORT DNS-PORT: the routing issue's sample
# configuration, with the test servers' ports
sample_config() {
	cat <<EOF
resolver  = "127.0.0.1:$2"
smtp_port = $1

pool default { source "127.0.0.1" { } }
pool gmail {
  source "127.0.0.11" { helo = "gm1.example.org" weight = 3 }
  source "127.0.0.12" { helo = "gm2.example.org" weight = 1 }
  source "127.0.0.13" { helo = "gm3.example.org" enabled = false }
}
pool transactional { source "127.0.0.20" { helo = "tx.example.org" } }

provider gmail {
  domains = { "gmail.com", "googlemail.com" }
  mx      = { "*.google.com", "*.googlemail.com" }
  pool    = "gmail"
  concurrency = 4
  rate    = "20/s"
  recipients_per_message  = 50
  messages_per_connection = 100
}
provider internal {
  domains = { "example.org" }
  relay   = "[127.0.0.30]:$1"
}
provider therest { pool = "default" concurrency = 20 }

lane priority { pool = "transactional" }
lane bulk {
  match_sender = { "*@lists.example.org" }
  match_user   = { "civicrm" }
  match_header = { "Precedence: bulk", "Precedence: list" }
}
EOF
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
