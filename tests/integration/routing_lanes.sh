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
#	    built sendmail is not set-id); otherwise default_lane
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
#	    while that backlog drains all arrive at the relay (within 20 s,
#	    from 127.0.0.1, the pool named default) before the backlog has
#	    drained, while gmail mail keeps arriving at no more than its rate;
#	    how long they took is printed.
#	Prints how long queueing N messages with one sendmail -bs took.
#	Takes about 35 seconds.
# SEE ALSO
#	routing_sources.sh, routing_throttle.sh
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN"

# ---------------------------------------------------------------- helpers

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
start_sink sink --listen $MX_G:@P@ --listen $RELAY:@P@ --listen $MX_SLOW:@P@=delay100 \
    --max-lifetime 600
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
		on_exit 'userdel civicrm 2>/dev/null'
		pass
	else
		fail "could not create the user civicrm"
	fi
fi
# A world outside $T (which is private to root): readable by all, the
# spool and log owned by civicrm, as if sendmail were set-id to it.
# (Not under $TMPDIR: tests/run.sh points it into $T.)
UW=$(mktemp -d /tmp/mxlane-routing-user.XXXXXX)
on_exit "rm -rf '$UW'"
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
track_pid "$BULKPASS"
if wait_for 20 sink_true "len([r for r in R if r['listener'] == '$MX_SLOW:$PORT']) >= 1"; then pass; else
	fail "the bulk pass did not connect to the one-slot MX within 20 s"; fi
sleep 0.3
t_sub=$(now)
printf 'From: shop@src.example\nX-Test-Id: slotprio\n\nreset\n' |
    assert_exit 0 "$SENDMAIL" -i -f shop@src.example reset@oneslot.test
if wait_for 20 sink_true "len(tids('slotprio')) >= 1"; then pass; else
	fail "the priority message did not arrive within 20 s"; fi
# session lines are written when a session ends
wait_for 10 sink_true "len([x for x in S for m in tids('slotprio') if x['session'] == m['session']]) >= 1"
say "priority message arrived $(pyc "round($(sinkq "min([m['time'] for m in tids('slotprio')] or [0])") - $t_sub, 2)") s after submission"
# sessions at the one-slot MX that started after the submission, in order
order=$(sinkq "[('prio' if any(m['session'] == x['session'] and m['x_test_id'] == 'slotprio' for m in M) else 'bulk') for x in sorted([x for x in S if x['listener'] == '$MX_SLOW:$PORT' and x['start'] > $t_sub], key=lambda x: x['start'])]")
say "sessions started after the submission: $order"
assert_eq 1 "$(sinkq "len([x for x in S if x['listener'] == '$MX_SLOW:$PORT' and x['start'] <= $t_sub < x['end']])")" \
    "bulk sessions holding the slot when the priority message was submitted"
assert_match "$order" "^\['prio'" "the first connection after the priority submission carries it"
assert_eq 1 "$(sinkq "len(tids('slotprio'))")" "copies of the priority message"
assert_eq 1 "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_active_per_listener"].get(sys.argv[2], 0))' \
    "$SINK_STATS" "$MX_SLOW:$PORT")" "max simultaneous sessions at the one-slot MX (concurrency 1)"
kill -TERM "$BULKPASS" 2>/dev/null
wait "$BULKPASS"

# ---------------------------------------------------------------- backlog

section "priority mail past a throttled bulk backlog"
if [ -n "${MXL_SANITIZE:-}" ]; then N=5000; else N=50000; fi
setup backlog "$(sample_config "$PORT" "$DNS_PORT")" "immediate_delivery = true"
"$PYTHON" "$SERVERS/bs_stream.py" "$N" news@src.example 'b%d@gmail.com' bulk >"$W/bs.in"
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
	track_pid "$DAEMON"
	local before=$1
	if wait_for 30 sink_true "len(tids('bulk-')) >= $((before + 60))"; then
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
	busy=$(sinkq "len([m for m in tids('bulk-') if m['time'] > $(now) - 3])")
	"$SENDMAIL" -i -f shop@src.example "reset-$tag@gmail.com" <"$W/prio.msg"
	rc=$?
	t_exit=$EPOCHREALTIME
	assert_eq 0 "$rc" "sendmail exit status ($tag)"
	wait_for 10 sink_true "len(tids('$tag')) >= 1"
	t_arr=$(sinkq "min([m['time'] for m in tids('$tag')] or [0])")
	say "$tag: arrived $(pyc "round($t_arr - $t_exit, 3)") s after sendmail returned; $busy bulk messages arrived in the 3 s before"
	assert_eq True "$(pyc "$busy >= 20")" "the daemon was delivering bulk mail before $tag (got $busy in 3 s)"
	assert_eq True "$(pyc "0 < $t_arr and $t_arr - $t_exit < 2")" \
	    "$tag reached the sink < 2 s after sendmail returned (got $(pyc "round($t_arr - $t_exit, 3)") s)"
	assert_eq 1 "$(sinkq "len(tids('$tag'))")" "copies of $tag at the sink"
	assert_match "$(sinkq "tids('$tag')[0]['peer_ip'] if tids('$tag') else ''")" "$want" "source address of $tag"
}

start_daemon 0
for i in 1 2 3; do
	priority_probe "prio-pool-$i" '^127\.0\.0\.20$'
	sleep 1
done

section "the relay gets internal mail at full speed while gmail is throttled"
"$PYTHON" "$SERVERS/bs_stream.py" 200 news@lists.example.org 'staff%d@example.org' internal >"$W/int.in"
g0=$(sent_count bulk)
t0=$(now)
busy=$(sinkq "len([m for m in tids('bulk-') if m['time'] > $t0 - 3])")
assert_eq True "$(pyc "$busy >= 20")" "gmail bulk mail was being delivered before the internal mail (got $busy in 3 s)"
assert_exit 0 "$SENDMAIL" -bs <"$W/int.in"
t_sub=$(now)
assert_eq 200 "$(grep -c '^250 2.0.0 Ok: queued as' "$OUT")" "internal messages accepted"
wait_for 20 sink_true "len(tids('internal-')) >= 200"
t_last=$(sinkq "max([m['time'] for m in tids('internal-')] or [0])")
g1=$(sent_count bulk)
say "200 internal messages: submitted in $(pyc "round($t_sub - $t0, 2)") s, the last arrived $(pyc "round($t_last - $t_sub, 2)") s after; $((g1 - g0)) gmail messages meanwhile"
assert_eq 200 "$(sinkq "len(tids('internal-'))")" "internal messages at the relay"
assert_eq "['$RELAY:$PORT']" "$(sinkq "sorted(set(m['listener'] for m in tids('internal-')))")" "listener of internal mail"
assert_eq "['127.0.0.1']" "$(sinkq "sorted(set(m['peer_ip'] for m in tids('internal-')))")" \
    "source of internal bulk mail (no lane or provider pool: the pool named default)"
# Not behind the newsletter: the gmail backlog was still draining when
# the last internal message arrived (its time, printed above, is a
# measure of speed, which depends on the machine: no timed assertion).
g_before_last=$(sinkq "len([m for m in tids('bulk-') if m['time'] <= $t_last])")
assert_eq True "$(pyc "$g_before_last < $N")" \
    "all 200 internal messages arrived while gmail's backlog was still draining ($g_before_last of $N gmail messages sent by then)"
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
