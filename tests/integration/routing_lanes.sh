#!/bin/bash
# NAME
#	routing_lanes.sh - lanes: rules, -O Lane, priority mail past a huge
#	throttled bulk backlog, and the internal relay at full speed
# DESCRIPTION
#	The issue's sample configuration (ports replaced) against a test DNS
#	server and a sink on gmail's MX and the internal relay. Asserts:
#	  - lane rules put mail in bulk (queuerun show's lane: field):
#	    match_sender (sendmail -f and -bs), match_header ("Precedence:
#	    bulk", "Precedence: list"), match_user (sendmail run as a Unix
#	    user named civicrm: created with useradd -r when missing and
#	    removed again; its spool is one civicrm can write, since the
#	    built sendmail is not setgid); otherwise default_lane
#	    (priority); -O Lane=priority beats every rule and -O Lane=bulk
#	    applies to every message of a -bs session;
#	  - a priority message submitted while a bulk pass holds a
#	    provider's only slot (concurrency 1, no lane pool, so the same
#	    throttle) goes out by a detached runner on the first connection
#	    that starts after it was submitted, before any more bulk;
#	  - with N bulk messages for gmail queued (N = 50,000, as the issue
#	    says; 5,000 under MXL_SANITIZE=1, where every submission and
#	    claim costs several times more) and a daemon sending them at
#	    gmail's limit, each of 3 priority messages to gmail.com reaches
#	    the sink less than 2 s after sendmail returns (sendmail wakes the
#	    daemon), from 127.0.0.20; the same with a priority lane that has
#	    no pool of its own, so that priority and bulk mail share gmail's
#	    sources and throttles; the daemon is shown to be delivering
#	    bulk mail just before each priority message;
#	  - 200 bulk messages for example.org (relay [127.0.0.30]) submitted
#	    while that backlog drains all arrive at the relay within 5 s (from
#	    127.0.0.1, the pool named default), while gmail mail keeps
#	    arriving at no more than its rate.
#	Prints how long queueing N messages with one sendmail -bs took.
#	Takes about 35 seconds.
# SEE ALSO
#	routing_sources.sh, routing_throttle.sh
. "$(dirname "$0")/../lib.sh"

PYTHON=/usr/bin/python3
SERVERS=$MXL_SRC/tests/servers
need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN"

SRV=$T/servers
rm -rf "$SRV"
mkdir -p "$SRV"
MY_PIDS=
EXTRA_DIRS=
CREATED_USER=
cleanup() {
	local p
	for p in $MY_PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $MY_PIDS; do
		wait "$p" 2>/dev/null
	done
	# shellcheck disable=SC2086
	[ -z "$EXTRA_DIRS" ] || rm -rf $EXTRA_DIRS
	[ -z "$CREATED_USER" ] || userdel "$CREATED_USER" 2>/dev/null
}
trap 'cleanup; [ -n "${MXL_SCRATCH:-}" ] || rm -rf "$T"' EXIT
trap 'exit 143' TERM INT

# ---------------------------------------------------------------- helpers

# wait_for SECONDS CMD...: true once CMD succeeds, polled every 0.1 s
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

# start_dns ZONEFILE: the DNS server on 127.0.0.1; sets DNS_PORT
start_dns() {
	rm -f "$SRV/dns.port"
	"$PYTHON" "$SERVERS/dnsserver.py" --zone "$1" --address 127.0.0.1 \
	    --port 0 --port-file "$SRV/dns.port" --log "$SRV/dns.log" \
	    >"$SRV/dns.out" 2>"$SRV/dns.err" &
	MY_PIDS="$MY_PIDS $!"
	if wait_for 20 test -s "$SRV/dns.port"; then
		pass
	else
		fail "DNS server did not start" "$(cat "$SRV/dns.err")"
		finish
	fi
	DNS_PORT=$(cat "$SRV/dns.port")
}

# start_sink ARG...: one sink; @P@ in ARGs becomes a random free port
# (retried when taken). Sets PORT, SINK_PID, SINKLOG.
start_sink() {
	local _
	SINKLOG=$SRV/sink.log
	for _ in 1 2 3 4 5 6; do
		PORT=$((20000 + RANDOM % 12000))
		rm -f "$SRV/sink.ready" "$SINKLOG"
		"$PYTHON" "$SERVERS/smtpsink.py" "${@//@P@/$PORT}" \
		    --log "$SINKLOG" --ready-file "$SRV/sink.ready" \
		    --stats-file "$SRV/sink.stats" --watch-pid $$ \
		    --max-lifetime 600 2>"$SRV/sink.err" &
		SINK_PID=$!
		MY_PIDS="$MY_PIDS $SINK_PID"
		wait_for 30 sh -c "[ -e '$SRV/sink.ready' ] || ! kill -0 $SINK_PID 2>/dev/null"
		if [ -e "$SRV/sink.ready" ]; then
			pass
			return 0
		fi
		if ! kill -0 "$SINK_PID" 2>/dev/null && grep -q "in use" "$SRV/sink.err"; then
			continue
		fi
		break
	done
	fail "sink did not start" "$(cat "$SRV/sink.err" 2>/dev/null)"
	finish
}

# sinkq EXPR: a python expression over the sink's log: R every record,
# M the accepted messages, tid(PREFIX) those whose X-Test-Id starts so,
# S the session records, C collections.Counter
cat >"$SRV/q.py" <<'PY'
import collections, json, sys
C = collections.Counter
R = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
M = [r for r in R if r["type"] == "message"]
S = [r for r in R if r["type"] == "session"]
def tid(p): return [m for m in M if (m.get("x_test_id") or "").startswith(p)]
print(eval(sys.argv[2]))
PY
sinkq() { "$PYTHON" "$SRV/q.py" "$SINKLOG" "$1"; }

# bs_stream N SENDER RCPT TAG [HEADER]: an SMTP dialogue for sendmail -bs
# queueing N messages; %d in RCPT becomes the message number, each has
# X-Test-Id TAG-number
cat >"$SRV/bs.py" <<'PY'
import sys
n, sender, rcpt, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
extra = (sys.argv[5] + "\r\n") if len(sys.argv) > 5 and sys.argv[5] else ""
w = sys.stdout.buffer
w.write(b"EHLO client.example\r\n")
for i in range(n):
    r = rcpt.replace("%d", str(i))
    w.write(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
             "From: <%s>\r\nTo: <%s>\r\nSubject: %s %d\r\nX-Test-Id: %s-%d\r\n"
             "%s\r\nmessage %d\r\n.\r\n"
             % (sender, r, sender, r, tag, i, tag, i, extra, i)).encode())
w.write(b"QUIT\r\n")
PY

# queue_bs N SENDER RCPT TAG [SENDMAIL-ARG...]: queue N messages in one
# sendmail -bs session; asserts every one was accepted
queue_bs() {
	local n=$1 sender=$2 rcpt=$3 tag=$4
	shift 4
	"$PYTHON" "$SRV/bs.py" "$n" "$sender" "$rcpt" "$tag" >"$SRV/bs.in"
	assert_exit 0 "$SENDMAIL" -bs "$@" <"$SRV/bs.in"
	assert_eq "$n" "$(grep -c '^250 2.0.0 Ok: queued as' "$OUT")" \
	    "messages accepted by sendmail -bs ($tag)"
}

# now: Unix time with microseconds, without a fork (bash 5)
now() { printf "%s\n" "$EPOCHREALTIME"; }
sent_count() { sinkq "len(tid('$1-'))"; }
pyc() { "$PYTHON" -c "print($1)"; }

# sample_config SMTP-PORT DNS-PORT: the issue's sample, with the ports
sample_config() {
	cat <<EOC
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
EOC
}

# new_id CMD...: runs CMD (a submission) and prints the one new queue id
new_id() {
	local before after
	before=$(queue_ids | sort)
	"$@"
	after=$(queue_ids | sort)
	comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep .
}

# lane_of ID: queuerun show's lane
lane_of() { env_get "$1" lane; }

# submit_lane WANT WHAT [SENDMAIL-ARG...] < message: queue one message
# (sendmail run under the command prefix in the array AS, if any) and
# assert its lane
AS=()
submit_lane() {
	local want=$1 what=$2 id
	shift 2
	id=$(new_id assert_exit 0 "${AS[@]}" "$SENDMAIL" "$@")
	if [ "$(printf '%s\n' "$id" | grep -c .)" = 1 ]; then pass; else
		fail "$what: expected one new message, got [$id]" "$(last_err)"; return; fi
	assert_eq "$want" "$(lane_of "$id")" "lane of mail $what"
}

section "DNS and sink"
MX_G=127.0.0.40
RELAY=127.0.0.30
MX_SLOW=127.0.0.42	# one slot, answers 100 ms late
cat >"$SRV/zone" <<EOZ
gmail.com			MX 5 gmail-smtp-in.l.google.com
gmail-smtp-in.l.google.com	A $MX_G
oneslot.test			MX 10 mx.oneslot.test
mx.oneslot.test			A $MX_SLOW
EOZ
start_dns "$SRV/zone"
start_sink --listen $MX_G:@P@ --listen $RELAY:@P@ --listen $MX_SLOW:@P@=delay100
say "sink on port $PORT, DNS on 127.0.0.1:$DNS_PORT"

# ---------------------------------------------------------------- rules

section "lane rules: match_sender, match_header, -O Lane"
setup rules "$(sample_config "$PORT" "$DNS_PORT")"
msg() { printf 'From: a@src.example\nSubject: lanes\n%s\nbody\n' "${1:+$1
}"; }
msg | submit_lane priority "with no rule matching (default_lane)" -i -f alice@src.example u@gmail.com
msg | submit_lane bulk "from *@lists.example.org" -i -f news@lists.example.org u@gmail.com
msg | submit_lane priority "from lists.example.org's parent domain" -i -f news@example.org u@gmail.com
msg "Precedence: bulk" | submit_lane bulk "with Precedence: bulk" -i -f alice@src.example u@gmail.com
msg "Precedence: list" | submit_lane bulk "with Precedence: list" -i -f alice@src.example u@gmail.com
msg "Precedence: junk" | submit_lane priority "with Precedence: junk" -i -f alice@src.example u@gmail.com
msg "X-Precedence: bulk" | submit_lane priority "with X-Precedence: bulk" -i -f alice@src.example u@gmail.com
msg "Precedence: bulk" | submit_lane priority "with Precedence: bulk and -O Lane=priority" \
    -i -O Lane=priority -f news@lists.example.org u@gmail.com
msg | submit_lane bulk "with -O Lane=bulk" -i -O Lane=bulk -f alice@src.example u@gmail.com
msg | submit_lane priority "from *@lists.example.org with -O Lane=priority" -i -O Lane=priority -f news@lists.example.org u@gmail.com
# -t: the sender rule looks at the envelope sender made from -f
printf 'From: news@lists.example.org\nTo: u@gmail.com\n\nbody\n' |
    submit_lane bulk "from *@lists.example.org with -t" -t -i -f news@lists.example.org

# -bs: rules per message, and -O Lane for the whole session
bs() {
	printf 'EHLO x\r\n'
	printf 'MAIL FROM:<news@lists.example.org>\r\nRCPT TO:<u@gmail.com>\r\nDATA\r\nX-Test-Id: bs-1\r\n\r\n1\r\n.\r\n'
	printf 'MAIL FROM:<alice@src.example>\r\nRCPT TO:<u@gmail.com>\r\nDATA\r\nX-Test-Id: bs-2\r\n\r\n2\r\n.\r\n'
	printf 'MAIL FROM:<alice@src.example>\r\nRCPT TO:<u@gmail.com>\r\nDATA\r\nPrecedence: list\r\nX-Test-Id: bs-3\r\n\r\n3\r\n.\r\n'
	printf 'QUIT\r\n'
}
lanes_of_bs() {
	local id
	for id in $(queue_ids); do
		printf '%s %s\n' "$(hdr "$id" X-Test-Id)" "$(lane_of "$id")"
	done | grep '^bs-' | sort
}
setup bs "$(sample_config "$PORT" "$DNS_PORT")"
bs | assert_exit 0 "$SENDMAIL" -bs
assert_eq "bs-1 bulk
bs-2 priority
bs-3 bulk" "$(lanes_of_bs)" "lanes of three -bs messages (sender rule, none, header rule)"
setup bs2 "$(sample_config "$PORT" "$DNS_PORT")"
bs | assert_exit 0 "$SENDMAIL" -bs -O Lane=priority
assert_eq "bs-1 priority
bs-2 priority
bs-3 priority" "$(lanes_of_bs)" "lanes of three -bs messages with -O Lane=priority"
setup bs3 "$(sample_config "$PORT" "$DNS_PORT")"
bs | assert_exit 0 "$SENDMAIL" -bs -O Lane=bulk
assert_eq "bs-1 bulk
bs-2 bulk
bs-3 bulk" "$(lanes_of_bs)" "lanes of three -bs messages with -O Lane=bulk"

# ---------------------------------------------------------------- match_user

section "match_user: mail submitted by the Unix user civicrm is bulk"
need_cmd setpriv useradd userdel getent
if ! getent passwd civicrm >/dev/null; then
	useradd -r -M -d /nonexistent -s /usr/sbin/nologin civicrm
	if getent passwd civicrm >/dev/null; then
		CREATED_USER=civicrm
		pass
	else
		fail "could not create the user civicrm"
	fi
fi
# A world outside $T (which is private to root): readable by all, the
# spool and log owned by civicrm, as if sendmail were set-id to it.
# (Not under $TMPDIR: tests/run.sh points it into $T.)
UW=$(mktemp -d /tmp/mxlane-routing-user.XXXXXX)
EXTRA_DIRS="$EXTRA_DIRS $UW"
chmod 0755 "$UW"
mkdir -p "$UW/spool"
: >"$UW/aliases"
: >"$UW/mxlane.log"
write_config "$UW/mxlane.conf" "$UW/spool" "$UW/aliases" "$UW/mxlane.log" \
    "$(sample_config "$PORT" "$DNS_PORT")"
chmod 0644 "$UW/mxlane.conf" "$UW/aliases"
# like the installed spool (0700, owned by the mail system's account):
# root's programs (mailq below) become civicrm before they touch it
chown civicrm:"$(id -g civicrm)" "$UW/spool" "$UW/mxlane.log"
chmod 0700 "$UW/spool"
chmod 0600 "$UW/mxlane.log"
export MXLANE_CONFIG=$UW/mxlane.conf
CIVI_UID=$(id -u civicrm)
CIVI_GID=$(id -g civicrm)
# as_civicrm CMD...: CMD as civicrm (no supplementary groups)
as_civicrm() {
	setpriv --reuid="$CIVI_UID" --regid="$CIVI_GID" --clear-groups -- \
	    env HOME=/nonexistent USER=civicrm LOGNAME=civicrm "$@"
}
AS=(as_civicrm)
msg | submit_lane bulk "submitted by civicrm" -i -f alice@src.example u@gmail.com
CIVI_ID=$(queue_ids | head -1)
msg | submit_lane priority "submitted by civicrm with -O Lane=priority" \
    -i -O Lane=priority -f alice@src.example u@gmail.com
AS=()
assert_eq civicrm "$(env_get "$CIVI_ID" user)" "user recorded for civicrm's message"
msg | submit_lane priority "submitted by root (the same message)" -i -f alice@src.example u@gmail.com
# queuerun route / -bv as civicrm say why
run as_civicrm "$QUEUERUN" route u@gmail.com
assert_match "$(sed -n 's/^  lane: //p' "$OUT")" '^bulk \(.*civicrm.*\)$' "queuerun route run by civicrm: lane (and why)"

# ---------------------------------------------------------------- next slot

section "a priority message waiting on a throttle gets the next free slot"
# concurrency 1 and a slow MX: a bulk pass holds the only slot a
# connection at a time; priority mail (no pool of its own, so the same
# throttle) submitted meanwhile goes out by a detached runner, and must
# have the first connection that starts after it was submitted.
setup slot "$(sample_config "$PORT" "$DNS_PORT" | sed 's/^lane priority { pool = "transactional" }$/lane priority { }/')" \
    'pool one { source "127.0.0.11" { } }' \
    'provider oneslot { domains = { "oneslot.test" } pool = "one" concurrency = 1 messages_per_connection = 5 }' \
    "immediate_delivery = true"
queue_bs 30 news@src.example 'b%d@oneslot.test' slotbulk -O Lane=bulk
timeout -k 5 120 "$QUEUERUN" run >"$W/bulkpass.out" 2>&1 &
BULKPASS=$!
MY_PIDS="$MY_PIDS $BULKPASS"
if wait_for 20 sh -c "[ \$('$PYTHON' '$SRV/q.py' '$SINKLOG' \"len([r for r in R if r['listener'] == '$MX_SLOW:$PORT'])\") -ge 1 ]"; then pass; else
	fail "the bulk pass did not connect to the one-slot MX within 20 s"; fi
sleep 0.3
t_sub=$(now)
printf 'From: shop@src.example\nX-Test-Id: slotprio\n\nreset\n' |
    assert_exit 0 "$SENDMAIL" -i -f shop@src.example reset@oneslot.test
if wait_for 20 sh -c "[ \$('$PYTHON' '$SRV/q.py' '$SINKLOG' \"len(tid('slotprio'))\") -ge 1 ]"; then pass; else
	fail "the priority message did not arrive within 20 s"; fi
# session lines are written when a session ends
wait_for 10 sh -c "[ \$('$PYTHON' '$SRV/q.py' '$SINKLOG' \"len([x for x in S for m in tid('slotprio') if x['session'] == m['session']])\") -ge 1 ]"
say "priority message arrived $(pyc "round($(sinkq "min([m['time'] for m in tid('slotprio')] or [0])") - $t_sub, 2)") s after submission"
# sessions at the one-slot MX that started after the submission, in order
order=$(sinkq "[('prio' if any(m['session'] == x['session'] and m['x_test_id'] == 'slotprio' for m in M) else 'bulk') for x in sorted([x for x in S if x['listener'] == '$MX_SLOW:$PORT' and x['start'] > $t_sub], key=lambda x: x['start'])]")
say "sessions started after the submission: $order"
assert_eq 1 "$(sinkq "len([x for x in S if x['listener'] == '$MX_SLOW:$PORT' and x['start'] <= $t_sub < x['end']])")" \
    "bulk sessions holding the slot when the priority message was submitted"
assert_match "$order" "^\['prio'" "the first connection after the priority submission carries it"
assert_eq 1 "$(sinkq "len(tid('slotprio'))")" "copies of the priority message"
assert_eq 1 "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_active_per_listener"].get(sys.argv[2], 0))' \
    "$SRV/sink.stats" "$MX_SLOW:$PORT")" "max simultaneous sessions at the one-slot MX (concurrency 1)"
kill -TERM "$BULKPASS" 2>/dev/null
wait "$BULKPASS"

# ---------------------------------------------------------------- backlog

section "priority mail past a throttled bulk backlog"
if [ -n "${MXL_SANITIZE:-}" ]; then N=5000; else N=50000; fi
setup backlog "$(sample_config "$PORT" "$DNS_PORT")" "immediate_delivery = true"
"$PYTHON" "$SRV/bs.py" "$N" news@src.example 'b%d@gmail.com' bulk >"$W/bs.in"
t0=$(now)
assert_exit 0 "$SENDMAIL" -bs -O Lane=bulk <"$W/bs.in"
el=$(pyc "round($(now) - $t0, 1)")
assert_eq "$N" "$(grep -c '^250 2.0.0 Ok: queued as' "$OUT")" "bulk messages accepted by sendmail -bs"
say "queueing $N messages with one sendmail -bs took $el s"
rm -f "$W/bs.in"
assert_eq "$N" "$("$SENDMAIL" -bp | sed -n 's/^-- .* in \([0-9]*\) Requests\.$/\1/p')" "messages in the queue (mailq's count)"

# start_daemon: a daemon; waits (at most 30 s) until it delivers bulk mail
start_daemon() {
	"$QUEUERUN" run --daemon 1h >"$W/daemon.out" 2>&1 &
	DAEMON=$!
	MY_PIDS="$MY_PIDS $DAEMON"
	local before=$1
	if wait_for 30 sh -c "[ \$('$PYTHON' '$SRV/q.py' '$SINKLOG' \"len(tid('bulk-'))\") -ge $((before + 60)) ]"; then
		pass
	else
		fail "the daemon delivered no bulk mail within 30 s" "$(cat "$W/daemon.out")"
	fi
}
stop_daemon() {
	kill -TERM "$DAEMON"
	wait "$DAEMON"
	assert_eq 0 "$?" "daemon exit status after SIGTERM"
}

# priority_probe TAG WANT-SOURCES: one priority message for gmail.com;
# asserts it arrives < 2 s after sendmail returns, from WANT-SOURCES, while
# the daemon was delivering bulk mail just before
priority_probe() {
	local tag=$1 want=$2 t_exit t_arr busy rc
	printf 'From: shop@src.example\nSubject: password reset\nX-Test-Id: %s\n\nyour code\n' "$tag" >"$W/prio.msg"
	busy=$(sinkq "len([m for m in tid('bulk-') if m['time'] > $(now) - 3])")
	"$SENDMAIL" -i -f shop@src.example "reset-$tag@gmail.com" <"$W/prio.msg"
	rc=$?
	t_exit=$EPOCHREALTIME
	assert_eq 0 "$rc" "sendmail exit status ($tag)"
	wait_for 10 sh -c "[ \$('$PYTHON' '$SRV/q.py' '$SINKLOG' \"len(tid('$tag'))\") -ge 1 ]"
	t_arr=$(sinkq "min([m['time'] for m in tid('$tag')] or [0])")
	say "$tag: arrived $(pyc "round($t_arr - $t_exit, 3)") s after sendmail returned; $busy bulk messages arrived in the 3 s before"
	assert_eq True "$(pyc "$busy >= 20")" "the daemon was delivering bulk mail before $tag (got $busy in 3 s)"
	assert_eq True "$(pyc "0 < $t_arr and $t_arr - $t_exit < 2")" \
	    "$tag reached the sink < 2 s after sendmail returned (got $(pyc "round($t_arr - $t_exit, 3)") s)"
	assert_eq 1 "$(sinkq "len(tid('$tag'))")" "copies of $tag at the sink"
	assert_match "$(sinkq "tid('$tag')[0]['peer_ip'] if tid('$tag') else ''")" "$want" "source address of $tag"
}

start_daemon 0
for i in 1 2 3; do
	priority_probe "prio-pool-$i" '^127\.0\.0\.20$'
	sleep 1
done

section "the relay gets internal mail at full speed while gmail is throttled"
"$PYTHON" "$SRV/bs.py" 200 news@lists.example.org 'staff%d@example.org' internal >"$W/int.in"
g0=$(sent_count bulk)
t0=$(now)
busy=$(sinkq "len([m for m in tid('bulk-') if m['time'] > $t0 - 3])")
assert_eq True "$(pyc "$busy >= 20")" "gmail bulk mail was being delivered before the internal mail (got $busy in 3 s)"
assert_exit 0 "$SENDMAIL" -bs <"$W/int.in"
t_sub=$(now)
assert_eq 200 "$(grep -c '^250 2.0.0 Ok: queued as' "$OUT")" "internal messages accepted"
wait_for 20 sh -c "[ \$('$PYTHON' '$SRV/q.py' '$SINKLOG' \"len(tid('internal-'))\") -ge 200 ]"
t_last=$(sinkq "max([m['time'] for m in tid('internal-')] or [0])")
g1=$(sent_count bulk)
say "200 internal messages: submitted in $(pyc "round($t_sub - $t0, 2)") s, the last arrived $(pyc "round($t_last - $t_sub, 2)") s after; $((g1 - g0)) gmail messages meanwhile"
assert_eq 200 "$(sinkq "len(tid('internal-'))")" "internal messages at the relay"
assert_eq "['$RELAY:$PORT']" "$(sinkq "sorted(set(m['listener'] for m in tid('internal-')))")" "listener of internal mail"
assert_eq "['127.0.0.1']" "$(sinkq "sorted(set(m['peer_ip'] for m in tid('internal-')))")" \
    "source of internal bulk mail (no lane or provider pool: the pool named default)"
assert_eq True "$(pyc "$t_last - $t_sub < 5")" \
    "all 200 internal messages at the relay within 5 s of submission (got $(pyc "round($t_last - $t_sub, 2)") s)"
# meanwhile gmail stays throttled: its rate is 20/s from each of two
# sources, so at most 2 * 20 * (time + 1) messages
el=$(pyc "$(now) - $t0")
assert_eq True "$(pyc "$((g1 - g0)) <= 40 * ($el + 1)")" "gmail messages while the internal ones went ($((g1 - g0)) in $(pyc "round($el, 1)") s)"
assert_eq True "$(pyc "$(sent_count bulk) < $N")" "gmail backlog still queued"
stop_daemon

section "priority mail sharing gmail's pool and throttle with the backlog"
sed -i 's/^lane priority { pool = "transactional" }$/lane priority { }/' "$CONF"
assert_eq 1 "$(grep -c '^lane priority { }$' "$CONF")" "priority lane without a pool in the config"
start_daemon "$(sent_count bulk)"
for i in 1 2 3; do
	priority_probe "prio-shared-$i" '^127\.0\.0\.1[12]$'
	sleep 1
done
stop_daemon
assert_eq 0 "$(sinkq "len([r for r in R if r.get('peer_ip') == '127.0.0.13'])")" "sink records from the disabled 127.0.0.13"

finish
