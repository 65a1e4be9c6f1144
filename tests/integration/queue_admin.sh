#!/bin/bash
# NAME
#	queue_admin.sh - queuerun hold, release, requeue and delete, with
#	runners at work
# DESCRIPTION
#	One DNS server and one test MX (smtpsink.py, 20 ms a reply, so that
#	deliveries are under way while the admin commands run): a.test is
#	provider alpha (pool pa), b.test goes to therest (pool default),
#	both at 127.0.0.170; src.example, the senders' domain, at
#	127.0.0.171 keeps the bounces. Asserts:
#	  - hold --domain b.test ALL while a daemon delivers: the count
#	    printed is the "placed on hold" log lines; mailq shows '!' after
#	    each held id; every b.test message is at the sink once or held
#	    in the queue, never both, never twice; a pass attempts nothing
#	    held; release ALL prints the held ones, they go at once, each
#	    exactly once;
#	  - the same over 1,100 messages (three batches of 500);
#	  - each selector narrows a hold: --lane, --sender, --older-than,
#	    --provider, --pool, --domain, --recipient, ids, and a
#	    combination (counts printed and '!' in mailq);
#	  - delete --bounce ALL while a daemon delivers: every message is at
#	    the sink at most once, removed or delivered, none left; the
#	    counts printed match the log lines; each deferred message gets
#	    its DSN (sent by the daemon), none a message a runner had
#	    claimed, so none a message that was delivered after all;
#	  - delete --recipient of a two-recipient message: the other
#	    recipient is delivered, the deleted one never;
#	  - delete --bounce: a DSN to the sender, "deleted by the
#	    administrator", action failed;
#	  - requeue --deferred --class: mail deferred for an hour (its MX
#	    down) is due now and delivered once DNS points elsewhere, by a
#	    daemon that delivers new mail at the same time, each once;
#	  - requeue after a configuration change runs the lane rules again
#	    for mail whose lane they chose (by sender, by a folded header),
#	    keeps a lane asked for with -O Lane=, logs the new lane, and
#	    the mail is delivered once from its new lane after release;
#	  - a move with --provider moves that provider's recipients only
#	    (a message's other recipient leaves from its own pool);
#	  - move, the issue's example: mail for provider alpha deferred from
#	    127.0.0.173 (the sink refuses it) is moved with
#	    "move --provider alpha --source 127.0.0.173 --deferred
#	    --to-source 127.0.0.174 ALL" while a daemon runs, and the sink
#	    gets each message once from 127.0.0.174 (peer_ip), none from
#	    .173; mail moved --to-pool pc leaves from pc's 127.0.0.175;
#	    requeue undoes a move; an unknown pool or source is EX_USAGE;
#	  - mailq --json, sendmail -bp --json and queuerun list --json: every
#	    line valid under tests/data/mailq.schema.json (python3-jsonschema),
#	    one per message mailq lists; queue names incoming (maildrop
#	    and queued), deferred, hold; a reply with quotes, a backslash,
#	    braces and UTF-8 survives as a JSON string, and so does a
#	    quoted local part;
#	    list --json names provider and pool, mailq --json leaves them
#	    null; the source of a moved message;
#	  - only root and the spool's owner may change the queue: with a
#	    spool owned by nobody (65534), nobody holds, root releases, uid
#	    1 (another user) is refused (75) and changes nothing;
#	  - bad arguments: EX_USAGE, unknown queue id EX_NOINPUT.
#	Every wait is bounded.
# SEE ALSO
#	delivery_queue.sh, replies_suppress.sh, queuerun(8)
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SERVERS/dsncheck.py" "$SENDMAIL" "$QUEUERUN"
IP_MX=127.0.0.170
IP_SRC=127.0.0.171
IP_DOWN=127.0.0.172

write_zone() {
	cat >"$SRV/zone.new" <<EOF
src.example	MX 10 mx.src.example
mx.src.example	A $IP_SRC
a.test	MX 10 mx.test
b.test	MX 10 mx.test
c.test	MX 10 mx.c.test
mx.test	A $IP_MX
mx.c.test	A $1
d.test	MX 10 mx.d.test
mx.d.test	A $IP_DOWN
EOF
	mv "$SRV/zone.new" "$SRV/zone"
}
write_zone $IP_DOWN
start_dns "$SRV/zone"
# Source 127.0.0.173 is refused (its mail is deferred, to be moved);
# recipient "weird" gets a reply full of what JSON must escape.
# (Bytes that are not UTF-8 and control characters: test_mailq_format.)
printf 'weird\t451 4.2.0 "quoted" back\\slash \xc3\xbcml\xc3\xa4ut {"x": 1}\n' >"$SRV/replies"
start_sink sink --listen $IP_MX:@P@ --listen $IP_SRC:@P@ --delay-ms 20 \
    --save-dir "$SRV/saved" --peer-greeting "127.0.0.173=421 4.7.0 not from you" \
    --rcpt-replies "$SRV/replies"

# world NAME [PA-SOURCE]: pool pa leaves from PA-SOURCE (127.0.0.1)
world() {
	setup "$1" "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
	    'minimal_backoff_time = "1h"' 'maximal_backoff_time = "2h"' \
	    'pool default { source "127.0.0.1" { } }' \
	    "pool pa { source \"${2:-127.0.0.1}\" { } }" \
	    'provider alpha { domains = { "a.test" } pool = "pa" }' \
	    'provider therest { pool = "default" }' \
	    'lane bulk { match_sender = { "*@lists.src.example" } }' \
	    "${@:3}"
}

# held_ids: the ids mailq marks held ('!'), one a line
held_ids() {
	"$SENDMAIL" -bp | grep -E '^[0-9A-F]{13}!' | cut -c1-13
}
# admin_lines WHAT: the admin log lines saying WHAT
admin_lines() { grep -F "mxlane/admin[" "$LOGFILE" | grep -cF ": $1"; }
# printed N: the number in the last command's output line
printed() { sed -n 's/^[a-z]*: \([0-9]*\) .*/\1/p' "$OUT"; }
# at_sink TAG-N: how many times the sink accepted that message
at_sink() { sinkq "len(tid('$1'))"; }
# once_at_most TAG: no message of TAG reached the sink twice
once_at_most() {
	assert_eq 1 "$(sinkq "max(list(C(m['x_test_id'] for m in tids('$1-')).values()) or [1])")" \
	    "no $1 message delivered twice"
}
queue_empty() { "$SENDMAIL" -bp | grep -q '^Mail queue is empty'; }
start_daemon() {
	"$QUEUERUN" run --daemon 1h >"$SRV/daemon.out" 2>&1 &
	DAEMON=$!
	track_pid "$DAEMON"
}
stop_daemon() {
	kill -TERM "$DAEMON" 2>/dev/null
	wait "$DAEMON"
	assert_eq 0 "$?" "daemon exit status after SIGTERM"
}

section "hold and release while a daemon delivers"
world hold
queue_bs 60 alice@src.example a%d@a.test HA
queue_bs 60 alice@src.example b%d@b.test HB
start_daemon
# Some b.test mail is delivered before the hold, some is under way.
wait_for 20 sink_true "len(tids('HA-')) + len(tids('HB-')) >= 5" ||
    fail "the daemon delivered nothing in 20 s"
assert_exit 0 "$QUEUERUN" hold --domain b.test ALL
HELD=$(printed)
assert_match "$(last_out)" '^held: [0-9]+ messages?$' "hold's output"
assert_eq "$HELD" "$(admin_lines "placed on hold")" "held count = log lines"
wait_for 60 sink_true "len(tids('HA-')) == 60" ||
    fail "a.test mail not all delivered while b.test is held" "$(sinkq "len(tids('HA-'))")"
# Attempts under way when the hold came finish; give them their time.
wait_for 10 sh -c "! $SENDMAIL -bp | grep -Eq '^[0-9A-F]{13}\\*'" ||
    fail "deliveries under way did not finish"
NHELD=$(held_ids | wc -l)
assert_eq "$NHELD" "$(queue_count)" "every message left is held"
assert_eq 60 $(($(sinkq "len(tids('HB-'))") + NHELD)) "b.test: delivered + held"
assert_true "[ $NHELD -le $HELD ] && [ $NHELD -gt 0 ]" "held in queue ($NHELD) <= printed ($HELD), > 0"
once_at_most HB
for id in $(held_ids | head -3); do
	assert_eq yes "$(env_get "$id" held)" "show says held ($id)"
done
# A pass, with --flush even, attempts nothing held.
SESSIONS=$(sinkq "len(sess('$IP_MX'))")
assert_exit 0 "$QUEUERUN" run --flush
assert_eq "$SESSIONS" "$(sinkq "len(sess('$IP_MX'))")" "no session for held mail"
assert_exit 0 "$QUEUERUN" release ALL
assert_eq "released: $NHELD message$([ "$NHELD" = 1 ] || echo s)" "$(last_out)" "release's output"
assert_eq "$NHELD" "$(admin_lines "released from hold")" "released log lines"
wait_for 30 sink_true "len(tids('HB-')) == 60" ||
    fail "released mail not delivered" "$(sinkq "len(tids('HB-'))")"
# The sink has them before the daemon has recorded it.
wait_for 20 queue_empty || fail "queue not empty 20 s after the release"
stop_daemon
assert_queue_empty "after release"
once_at_most HB
once_at_most HA

section "more than one batch, with a daemon at work"
world batches
queue_bs 1100 alice@src.example k%d@b.test BK
start_daemon
wait_for 30 sink_true "len(tids('BK-')) >= 20" ||
    fail "the daemon delivered nothing in 30 s"
assert_exit 0 "$QUEUERUN" hold ALL
HELD=$(printed)
assert_eq "$HELD" "$(admin_lines "placed on hold")" "held count = log lines"
wait_for 20 sh -c "! $SENDMAIL -bp | grep -Eq '^[0-9A-F]{13}\\*'" ||
    fail "deliveries under way did not finish"
NHELD=$(held_ids | wc -l)
say "held $HELD, of which $NHELD were not in a session already"
assert_true "[ $NHELD -gt 500 ] && [ $NHELD -le $HELD ]" "held over two batches ($NHELD of $HELD)"
assert_eq "$NHELD" "$(queue_count)" "every message left is held"
assert_eq 1100 $(($(sinkq "len(tids('BK-'))") + NHELD)) "delivered + held"
assert_exit 0 "$QUEUERUN" release ALL
assert_eq "released: $NHELD messages" "$(last_out)" "release over batches"
wait_for 120 sink_true "len(tids('BK-')) == 1100" ||
    fail "released mail not delivered" "$(sinkq "len(tids('BK-'))")"
wait_for 20 queue_empty || fail "queue not empty after the release"
stop_daemon
once_at_most BK

section "selectors narrow a hold, and combine"
world sel
submit() { submit_file "$(message_file "$1")" -f "$2" -i "${@:3}"; }
submit s1 alice@src.example a1@a.test
S1=$NEWID
submit s2 alice@src.example a2@a.test
S2=$NEWID
# --older-than: the mail above arrived at least 2 s before MID, the
# mail below at least 2 s after it; an age of "now - MID" seconds then
# parts them however long the steps between take (arrival times are
# whole seconds).
sleep 2
MID=$(date +%s)
sleep 2
submit s3 news@lists.src.example b1@b.test
S3=$NEWID
submit s4 news@lists.src.example b2@b.test
submit s5 alice@src.example x@a.test y@b.test
S5=$NEWID
assert_eq bulk "$(env_get "$S3" lane)" "lane of news@lists mail"
# hold_by N ARG...: hold with ARGs holds N messages, mailq shows N '!',
# then release ALL releases them
hold_by() {
	local n=$1
	shift
	assert_exit 0 "$QUEUERUN" hold "$@"
	assert_eq "held: $n message$([ "$n" = 1 ] || echo s)" "$(last_out)" "hold $*"
	assert_eq "$n" "$(held_ids | wc -l)" "'!' in mailq after hold $*"
	assert_exit 0 "$QUEUERUN" release ALL
	assert_eq "released: $n message$([ "$n" = 1 ] || echo s)" "$(last_out)" "release after hold $*"
	assert_eq 0 "$(held_ids | wc -l)" "no '!' after release ($*)"
}
hold_by 2 --lane bulk ALL
hold_by 2 --sender NEWS@lists.src.example ALL
hold_by 3 --sender alice@src.example ALL
hold_by 3 --provider alpha ALL
hold_by 3 --pool default ALL
hold_by 3 --domain b.test ALL
hold_by 2 --domain b.test --lane bulk ALL
hold_by 1 --domain b.test --sender alice@src.example ALL
hold_by 1 --recipient Y@B.test ALL
hold_by 2 --older-than "$(($(date +%s) - MID))s" ALL
hold_by 1 --older-than "$(($(date +%s) - MID))s" --recipient a2@a.test ALL
hold_by 2 "$S1" "$S3"
hold_by 0 "$S1" --lane bulk
hold_by 0 --deferred ALL
hold_by 0 --class bad-mailbox ALL
HOLDS=$(admin_lines "$S5: placed on hold")
assert_exit 0 "$QUEUERUN" hold "$S5"
assert_exit 0 "$QUEUERUN" hold "$S5"
assert_eq "held: 0 messages" "$(last_out)" "holding a held message again"
assert_eq $((HOLDS + 1)) "$(admin_lines "$S5: placed on hold")" "one log line for two holds"
# A held message is not attempted when asked for by id, nor flushed.
assert_exit 0 "$QUEUERUN" run --id "$S5" --flush
assert_eq 0 "$(sinkq "len(tid('s5'))")" "held message not sent by run --id"
assert_exit 0 "$SENDMAIL" -q
assert_eq 0 "$(sinkq "len(tid('s5'))")" "held message not sent by sendmail -q"
assert_eq 4 "$(sinkq "len([t for t in ('s1','s2','s3','s4') if len(tid(t)) == 1])")" "the others sent once"
assert_eq "$S5" "$(queue_ids)" "only the held message left"
assert_exit 0 "$QUEUERUN" release "$S5"
assert_exit 0 "$QUEUERUN" run
assert_eq "1 1" "$(sinkq "len(to('x@a.test')), len(to('y@b.test'))" | tr -d '(),')" "released message sent once to each"
assert_queue_empty "after the selectors"

section "only root and the spool's owner change the queue"
# Needs root (CI runs as root) to hand a spool to another account, in a
# directory every account can traverse (the scratch one is 0700).
if [ "$(id -u)" -ne 0 ]; then
	fail "this section needs root (CI runs as root)"
else
	need_cmd setpriv
	P=$(mktemp -d /tmp/mxlane-queue-admin.XXXXXX)
	on_exit "rm -rf '$P'"
	chmod 755 "$P"
	mkdir -m 700 "$P/spool"
	: >"$P/log"
	chown 65534:65534 "$P/spool" "$P/log"
	printf 'spool_directory = "%s/spool"\nlog_file = "%s/log"\nimmediate_delivery = false\n' \
	    "$P" "$P" >"$P/conf"
	as_uid() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
	printf 'Subject: p\n\np\n' | assert_exit 0 env MXLANE_CONFIG="$P/conf" "$SENDMAIL" -f a@src.example p@a.test
	assert_exit 0 as_uid 65534 "$QUEUERUN" -C "$P/conf" hold ALL
	assert_eq "held: 1 message" "$(last_out)" "the spool's owner holds"
	assert_exit 75 as_uid 1 "$QUEUERUN" -C "$P/conf" release ALL
	assert_contains "$(last_err)" "cannot open the spool directory" "another user refused"
	assert_eq "" "$(last_out)" "another user changed nothing"
	assert_eq 1 "$(grep -c 'placed on hold' "$P/log")" "one hold logged"
	assert_eq 0 "$(grep -c 'released from hold' "$P/log")" "no release logged"
	assert_exit 0 "$QUEUERUN" -C "$P/conf" release ALL
	assert_eq "released: 1 message" "$(last_out)" "root releases"
	assert_eq "" "$(find "$P/spool" ! -user 65534)" "every spool file the owner's"
fi

section "arguments"
assert_exit 64 "$QUEUERUN" hold
assert_exit 64 "$QUEUERUN" hold --lane nosuch ALL
assert_exit 64 "$QUEUERUN" hold --provider nosuch ALL
assert_exit 64 "$QUEUERUN" hold --pool nosuch ALL
assert_exit 64 "$QUEUERUN" hold --older-than soon ALL
assert_exit 64 "$QUEUERUN" hold ALL 0123456789ABC
assert_exit 64 "$QUEUERUN" hold not-an-id
assert_exit 64 "$QUEUERUN" release --bounce ALL
assert_exit 66 "$QUEUERUN" hold 0123456789ABC
assert_contains "$(last_err)" "0123456789ABC: no such message" "unknown id"

section "delete --bounce while a daemon delivers"
world delete
# Deferred for an hour (d.test's MX is down): not claimed by anyone.
queue_bs 20 alice@src.example e%d@d.test DD
assert_exit 0 "$QUEUERUN" run
assert_eq 20 "$(queue_count)" "d.test mail deferred"
queue_bs 80 alice@src.example d%d@a.test DA
start_daemon
wait_for 20 sink_true "len(tids('DA-')) >= 5" ||
    fail "the daemon delivered nothing in 20 s"
assert_exit 0 "$QUEUERUN" delete --bounce ALL
assert_match "$(last_out)" '^deleted: [0-9]+ recipients? of [0-9]+ messages?, [0-9]+ messages? removed$' "delete's output"
DELETED=$(sed -n 's/^deleted: \([0-9]*\) .*/\1/p' "$OUT")
MSGS=$(sed -n 's/.* of \([0-9]*\) messages\{0,1\},.*/\1/p' "$OUT")
REMOVED=$(sed -n 's/.*, \([0-9]*\) messages\{0,1\} removed$/\1/p' "$OUT")
# One recipient each: every message touched is removed.
assert_eq "$DELETED $DELETED" "$MSGS $REMOVED" "recipients, messages and removals printed"
assert_eq "$MSGS" $(($(admin_lines "removed") + $(admin_lines "1 recipient deleted"))) \
    "a log line for each message"
wait_for 30 queue_empty || fail "queue not empty 30 s after delete (bounces included)"
stop_daemon
assert_queue_empty "after delete ALL"
once_at_most DA
# A message deleted while its session was under way may have gone too.
assert_true "[ $(($(sinkq "len(tids('DA-'))") + REMOVED)) -ge 100 ]" "every message sent or removed"
# The DSNs: one for each deferred message; none for a recipient a
# runner had claimed (a session may have delivered it: no DSN can say
# it failed), so none for a message that was delivered after all.
dsn_table
assert_eq 0 "$(grep -c INVALID "$SRV/dsn.tsv")" "every DSN valid"
final_ids() {	# final_ids LETTER DOMAIN TAG: TAG-N for the DSNs to LETTER<N>@DOMAIN
	awk -F'\t' -v l="$1" -v d="@$2" -v t="$3" '$2 == "failed" && index($4, d) && substr($4, 1, 1) == l {
		n = substr($4, 2, index($4, "@") - 2); print t "-" n }' "$SRV/dsn.tsv" | sort
}
assert_eq "$(seq 0 19 | sed 's/^/DD-/' | sort)" "$(final_ids e d.test DD)" "one DSN for each deferred message deleted"
assert_eq "" "$(sinkq "'\\n'.join(sorted(m['x_test_id'] for m in tids('DA-')))" | comm -12 - <(final_ids d a.test DA))" \
    "no DSN for a message that was delivered"
assert_true "[ $(final_ids d a.test DA | wc -l) -le $((DELETED - 20)) ]" "DSNs for a.test no more than deleted"

section "delete one recipient, then the message"
world delete1
submit d1 alice@src.example p@a.test q@b.test
D1=$NEWID
assert_exit 0 "$QUEUERUN" delete --recipient q@b.test "$D1"
assert_eq "deleted: 1 recipient of 1 message, 0 messages removed" "$(last_out)" "delete --recipient"
assert_eq "1" "$(admin_lines "$D1: 1 recipient deleted")" "log line of a recipient deleted"
assert_exit 0 "$QUEUERUN" run
assert_eq 1 "$(sinkq "len(to('p@a.test'))")" "the other recipient delivered"
assert_eq 0 "$(sinkq "len(to('q@b.test'))")" "the deleted one never"
assert_queue_empty "after the other was delivered"
submit d2 alice@src.example r@a.test s@a.test
D2=$NEWID
assert_exit 0 "$QUEUERUN" delete --domain a.test "$D2"
assert_eq "deleted: 2 recipients of 1 message, 1 message removed" "$(last_out)" "delete --domain of every recipient"
check_gone "$D2"

section "delete --bounce"
world bounce
submit d3 alice@src.example gone@c.test
D3=$NEWID
assert_exit 0 "$QUEUERUN" run
check_rcpt "$D3" gone@c.test queued 1
BOUNCES=$(sinkq "len([m for m in at('$IP_SRC') if m['mail_from'] == ''])")
assert_exit 0 "$QUEUERUN" delete --bounce "$D3"
assert_eq "deleted: 1 recipient of 1 message, 1 message removed" "$(last_out)" "delete --bounce"
check_gone "$D3"
assert_exit 0 "$QUEUERUN" run
wait_for 20 sink_true "len([m for m in at('$IP_SRC') if m['mail_from'] == '']) == $BOUNCES + 1" ||
    fail "no bounce for the deleted message"
dsn_table
check_dsn "$D3" failed gone@c.test failed '^5\.0\.0$' "deleted by the administrator"

section "requeue: deferred mail goes now, by today's DNS"
world requeue
write_zone $IP_DOWN
submit r1 alice@src.example u@c.test
R1=$NEWID
submit r2 alice@src.example v@a.test w@c.test
R2=$NEWID
queue_bs 30 alice@src.example q%d@c.test RQ
assert_exit 0 "$QUEUERUN" run
check_rcpt "$R1" u@c.test queued 1
CLASS=$(rcpt_get "$R1" u@c.test class)
assert_ne "" "$CLASS" "a deferral has a class"
write_zone $IP_MX
# Not due for an hour: a plain pass leaves it.
assert_exit 0 "$QUEUERUN" run
assert_eq 0 "$(sinkq "len(tid('r1'))")" "not retried before its time"
# A daemon delivers new mail while the requeue happens.
start_daemon
queue_bs 30 alice@src.example r%d@a.test RA
assert_exit 0 "$QUEUERUN" requeue --deferred --class "$CLASS" ALL
assert_eq "requeued: 32 messages, 32 recipients" "$(last_out)" "requeue's output"
assert_eq 32 "$(admin_lines "requeued")" "requeued log lines"
wait_for 30 sink_true "len(tids('RQ-')) == 30 and len(tids('RA-')) == 30" ||
    fail "requeued mail not delivered" "$(sinkq "len(tids('RQ-')), len(tids('RA-'))")"
wait_for 20 queue_empty || fail "queue not empty after requeue"
stop_daemon
once_at_most RQ
once_at_most RA
assert_eq 1 "$(sinkq "len(tid('r1'))")" "requeued message delivered"
assert_eq 1 "$(sinkq "len(to('w@c.test'))")" "requeued recipient delivered"
assert_eq 1 "$(sinkq "len(to('v@a.test'))")" "its other recipient once"
assert_queue_empty "after requeue"

section "requeue chooses the lane anew, unless it was asked for"
world lanes
submit ln1 news@lists.src.example z1@a.test
LN1=$NEWID
submit ln2 bob@src.example z2@a.test -O Lane=bulk
LN2=$NEWID
submit ln3 alice@src.example z3@a.test
LN3=$NEWID
printf 'From: carol@src.example\nX-Campaign: spring\n  sale\nX-Test-Id: ln4\n\nfolded\n' >"$SRV/msg.ln4"
submit_file "$SRV/msg.ln4" -f carol@src.example -i z4@a.test
LN4=$NEWID
DEF=$(env_get "$LN3" lane)
assert_eq "bulk bulk $DEF $DEF" "$(for i in "$LN1" "$LN2" "$LN3" "$LN4"; do env_get "$i" lane; done | tr '\n' ' ' | sed 's/ $//')" \
    "lanes at submission (rule, asked, default, default)"
assert_ne bulk "$DEF" "the default lane is another"
assert_exit 0 "$QUEUERUN" hold ALL
# Today's configuration: bulk is alice's, a campaign header has a lane.
write_config "$CONF" "$SPOOL" "$ALIASES" "$LOGFILE" \
    "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
    'pool default { source "127.0.0.1" { } }' \
    'lane camp { match_header = { "X-Campaign: spring*sale" } }' \
    'lane bulk { match_sender = { "alice@src.example" } }'
assert_exit 0 "$QUEUERUN" requeue ALL
assert_eq "requeued: 4 messages, 4 recipients" "$(last_out)" "requeue's output"
assert_eq "$DEF bulk bulk camp" "$(for i in "$LN1" "$LN2" "$LN3" "$LN4"; do env_get "$i" lane; done | tr '\n' ' ' | sed 's/ $//')" \
    "lanes after requeue (rules again; the asked-for lane kept; a folded header matched)"
assert_eq 3 "$(grep -F "mxlane/admin[" "$LOGFILE" | grep -cE ": requeued, lane ($DEF|bulk|camp)\$")" \
    "log lines of requeue naming the new lane"
assert_exit 0 "$QUEUERUN" release ALL
assert_exit 0 "$QUEUERUN" run
assert_eq "1 1 1 1" "$(for t in ln1 ln2 ln3 ln4; do at_sink "$t"; done | tr '\n' ' ' | sed 's/ $//')" \
    "each message delivered once from its new lane's schedule"
assert_queue_empty "after the lanes changed"

section "move between sources and pools"
world move 127.0.0.173 \
    'pool pb { source "127.0.0.174" { } }' \
    'pool pc { source "127.0.0.175" { } source "127.0.0.176" { enabled = false } }'
queue_bs 20 alice@src.example m%d@a.test MA
queue_bs 5 alice@src.example n%d@b.test MB
assert_exit 0 "$QUEUERUN" run
assert_eq 20 "$(queue_count)" "alpha's mail deferred from 127.0.0.173"
assert_eq 5 "$(sinkq "len(tids('MB-'))")" "therest's mail delivered"
ID=$(queue_ids | head -1)
assert_eq 127.0.0.173 "$(rcpt_get "$ID" "$(env_rcpts "$ID")" last_source)" "show's last_source"
assert_exit 64 "$QUEUERUN" move --to-source 192.0.2.99 ALL
assert_contains "$(last_err)" "not a source address of any pool" "unknown source"
assert_exit 64 "$QUEUERUN" move --to-pool nosuch ALL
assert_contains "$(last_err)" "no such pool" "unknown pool"
assert_exit 64 "$QUEUERUN" move ALL
assert_exit 64 "$QUEUERUN" move --to-pool pb --to-source 127.0.0.174 ALL
# Five stay behind, moved to a pool later.
LATER=$(queue_ids | tail -5)
for id in $LATER; do
	run "$QUEUERUN" hold "$id"
done
start_daemon
assert_exit 0 "$QUEUERUN" move --provider alpha --source 127.0.0.173 --deferred \
    --to-source 127.0.0.174 ALL
# Held mail is moved too; it stays held.
assert_eq "moved: 20 messages" "$(last_out)" "move's output"
assert_eq 20 "$(admin_lines "moved to source 127.0.0.174")" "moved log lines"
wait_for 30 sink_true "len(tids('MA-')) == 15" ||
    fail "moved mail not delivered" "$(sinkq "len(tids('MA-'))")"
wait_for 20 sh -c "[ \$($SENDMAIL -bp | grep -cE '^[0-9A-F]{13}') -eq 5 ]" ||
    fail "moved mail not removed"
assert_eq "[('127.0.0.174', 15)]" "$(sinkq "sorted(C(m['peer_ip'] for m in tids('MA-')).items())")" \
    "moved mail left from 127.0.0.174 only"
once_at_most MA
# The held five: moved on to pool pc, released; pc's enabled source sends.
assert_exit 0 "$QUEUERUN" move --to-pool pc ALL
assert_eq "moved: 5 messages" "$(last_out)" "move --to-pool"
assert_eq pc "$(env_get "$(echo "$LATER" | head -1)" moved_to_pool)" "show's moved_to_pool"
assert_eq 5 "$(held_ids | wc -l)" "still held after a move"
assert_exit 0 "$QUEUERUN" release ALL
wait_for 30 sink_true "len(tids('MA-')) == 20" ||
    fail "mail moved to pc not delivered" "$(sinkq "len(tids('MA-'))")"
wait_for 20 queue_empty || fail "queue not empty after the moves"
stop_daemon
assert_eq "[('127.0.0.174', 15), ('127.0.0.175', 5)]" \
    "$(sinkq "sorted(C(m['peer_ip'] for m in tids('MA-')).items())")" \
    "pool pc's enabled source only"
assert_eq 0 "$(sinkq "len([m for m in M if m['peer_ip'] == '127.0.0.173'])")" "nothing accepted from .173"
once_at_most MA
# A move by provider is for that provider's recipients only: the
# message's b.test recipient keeps therest's pool (127.0.0.1).
submit mx2 alice@src.example x@a.test y@b.test
MX2=$NEWID
assert_exit 0 "$QUEUERUN" hold "$MX2"
assert_exit 0 "$QUEUERUN" move --provider alpha --to-source 127.0.0.174 "$MX2"
assert_eq alpha "$(env_get "$MX2" moved_for_provider)" "show's moved_for_provider"
assert_exit 0 "$QUEUERUN" release "$MX2"
assert_exit 0 "$QUEUERUN" run
assert_eq "[('127.0.0.1', ['y@b.test']), ('127.0.0.174', ['x@a.test'])]" \
    "$(sinkq "sorted((m['peer_ip'], m['rcpt_tos']) for m in tid('mx2'))")" \
    "a move for alpha's mail: x@a.test from 127.0.0.174, y@b.test from its own pool"
# requeue routes again from scratch: the move is undone.
queue_bs 1 alice@src.example u@a.test MU
U=$(queue_ids)
assert_exit 0 "$QUEUERUN" hold "$U"
assert_exit 0 "$QUEUERUN" move --to-source 127.0.0.174 "$U"
assert_eq 127.0.0.174 "$(env_get "$U" moved_to_source)" "moved_to_source"
assert_exit 0 "$QUEUERUN" requeue "$U"
assert_eq "" "$(env_get "$U" moved_to_source)" "requeue undoes the move"
assert_exit 0 "$QUEUERUN" delete "$U"

section "mailq --json and queuerun list --json"
world json
SCHEMA=$MXL_SRC/tests/data/mailq.schema.json
# jq FILE EXPR: EXPR over the JSON lines of FILE, each checked against
# the schema first (a line that fails is a failed assertion)
jq() {
	local r
	if r=$("$PYTHON" "$SERVERS/jsonlines.py" "$SCHEMA" "$1" "$2" 2>"$SRV/jsonlines.err"); then
		pass
	else
		fail "$1: not valid under mailq.schema.json" "$(cat "$SRV/jsonlines.err")"
	fi
	printf '%s\n' "$r"
}
submit j1 alice@src.example weird@a.test plain@d.test
J1=$NEWID
submit j2 news@lists.src.example h@b.test
J2=$NEWID
submit j3 '<>' '"odd \"quoted\" local"@d.test'
J3=$NEWID
# In the maildrop still: incoming.
assert_exit 0 "$MAILQ" --json
cp "$OUT" "$SRV/q0.json"
assert_eq "(3, ['incoming', 'incoming', 'incoming'])" \
    "$(jq "$SRV/q0.json" "len(L), [o['queue_name'] for o in L]")" "mailq --json of the maildrop"
assert_exit 0 "$QUEUERUN" hold "$J2"
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" move --to-pool pa "$J3"
# After the last queuerun: in the maildrop.
submit j4 alice@src.example fresh@b.test
J4=$NEWID
assert_exit 0 "$SENDMAIL" -bp --json
cp "$OUT" "$SRV/q1.json"
assert_eq "$(queue_count)" "$(wc -l <"$SRV/q1.json")" "one line per message mailq lists"
assert_eq "deferred hold deferred incoming" \
    "$(jq "$SRV/q1.json" "' '.join(by_id[i]['queue_name'] for i in ('$J1', '$J2', '$J3', '$J4'))")" "queue names"
# mxlane keeps replies printable ASCII: the UTF-8 is '?' by then.
assert_contains "$(jq "$SRV/q1.json" "[r['delay_reason'] for r in by_id['$J1']['recipients'] if r['address'] == 'weird@a.test'][0]")" \
    '451 4.2.0 "quoted" back\slash ??ml??ut {"x": 1}' "a hostile reply, escaped and read back"
assert_eq "['weird@a.test', 'plain@d.test']" \
    "$(jq "$SRV/q1.json" "[r['address'] for r in by_id['$J1']['recipients']]")" "pending recipients"
assert_eq "None None 127.0.0.1" \
    "$(jq "$SRV/q1.json" "' '.join(str(by_id['$J1']['recipients'][0][k]) for k in ('provider', 'pool', 'source'))")" \
    "mailq --json: no provider or pool (no look-ups), the last source"
assert_eq '"odd \"quoted\" local"@d.test' \
    "$(jq "$SRV/q1.json" "by_id['$J3']['recipients'][0]['address']")" "a quoted local part"
assert_eq " bulk" "$(jq "$SRV/q1.json" "by_id['$J3']['sender'] + ' ' + by_id['$J2']['lane']")" "null sender, lane"
assert_true "[ -n \"$(jq "$SRV/q1.json" "by_id['$J1']['recipients'][1]['class'] or ''")\" ]" "the class of a deferral"
assert_exit 0 "$QUEUERUN" list --json
cp "$OUT" "$SRV/q2.json"
assert_eq "alpha pa therest default therest pa" \
    "$(jq "$SRV/q2.json" "' '.join(by_id[i]['recipients'][0][k] for i in ('$J1', '$J2', '$J3') for k in ('provider', 'pool'))")" \
    "list --json: provider and pool, the move's pool for a moved message"
# J4 still in the maildrop: both list it from there.
assert_eq "$(jq "$SRV/q1.json" "sorted(by_id)")" "$(jq "$SRV/q2.json" "sorted(by_id)")" \
    "list --json lists what mailq --json lists"
assert_exit 64 "$SENDMAIL" --json -t
assert_exit 0 "$QUEUERUN" delete ALL
assert_exit 0 "$MAILQ" --json
assert_eq "" "$(last_out)" "an empty queue is no line at all"
assert_no_traceback

finish
