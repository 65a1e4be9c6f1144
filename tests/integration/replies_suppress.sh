#!/bin/bash
# NAME
#	replies_suppress.sh - the suppression list: fed by bounces, obeyed
#	without a connection, expiring, kept by hand, shared by everyone
# DESCRIPTION
#	One sink with two listeners: the MX of rcpt.test and blocked.test
#	(127.0.0.160), which answers chosen replies to chosen recipients
#	(smtpsink.py --rcpt-replies), and the MX of src.example (127.0.0.161),
#	the sender's domain, which receives the bounces. "No connection" is
#	asserted as "no new session on 127.0.0.160".
#
#	  550 5.1.1 .................. the address goes on the list (class
#	                               bad-mailbox, how bounce, the reply)
#	  next message, -t ........... bounced, no session, a DSN that says
#	                               "recipient suppressed until", log
#	                               "status=bounced (suppressed ...)"
#	  next message, -bs .......... RCPT accepted (250), then the same
#	  lane suppress = false ...... attempted all the same
#	  domain entry @blocked.test . bounced, no session
#	  remove ..................... attempted again
#	  add --for, import, export .. round trip; bad lines refused whole
#	  452 4.2.2 three times ...... (three messages; one message retried
#	                               counts once) suppressed as quota
#	  suppress_time 2s ........... expires: mail goes again, and the
#	                               runner removes the entry
#	  import killed (SIGKILL) .... whole transactions of 1000 only, and
#	                               the list usable at once after
#	  concurrency ................ submitters, two runners and admin
#	                               adds at once: every entry there once
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SERVERS/dsncheck.py" "$SENDMAIL" "$QUEUERUN"
RULES=$MXL_SRC/conf/replies.conf
IP_MX=127.0.0.160
IP_SRC=127.0.0.161

cat >"$SRV/zone" <<EOF
src.example	MX 10 mx.src.example
mx.src.example	A $IP_SRC
rcpt.test	MX 10 mx.rcpt.test
blocked.test	MX 10 mx.rcpt.test
mx.rcpt.test	A $IP_MX
EOF
start_dns "$SRV/zone"
{
	printf 'gone\t550 5.1.1 <gone@rcpt.test>: Recipient address rejected: User unknown\n'
	printf 'full\t452 4.2.2 <full@rcpt.test>: Mailbox full\n'
	for k in 1 2 3 4 5 6 7 8 9 10; do
		printf 'dead%d\t550 5.1.1 <dead%d@rcpt.test>: User unknown\n' "$k" "$k"
	done
} >"$SRV/replies"
start_sink sink --listen $IP_MX:@P@ --listen $IP_SRC:@P@ \
    --rcpt-replies "$SRV/replies" --save-dir "$SRV/saved"

world() {
	setup "$1" "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
	    'minimal_backoff_time = "1h"' 'maximal_backoff_time = "2h"' \
	    "include(\"$RULES\")" 'lane resets { suppress = false }' "${@:2}"
}
# sessions at the recipients' MX so far
mx_sessions() { sinkq "len([r for r in of('connect') if r['listener'].startswith('$IP_MX:')])"; }
# recipients of rcpt.test the MX was asked about
asked() { sinkq "sum(1 for r in R for x in r.get('rcpts_rejected', []) + [{'rcpt': a} for a in r.get('rcpt_tos', [])] if x['rcpt'].lower() == '$1')"; }
entry_field() {
	"$QUEUERUN" suppress list --json | "$PYTHON" -c '
import json, sys
for e in json.load(sys.stdin):
    if e["address"] == sys.argv[1]:
        print(e[sys.argv[2]] if e[sys.argv[2]] is not None else "null")' "$1" "$2"
}

section "a 550 5.1.1 puts the address on the list"
world main
submit_file "$(message_file first)" -f alice@src.example -i gone@rcpt.test ok@rcpt.test
ID1=$NEWID
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run
check_log "$ID1" gone@rcpt.test bounced '5\.1\.1' "User unknown"
assert_match "$(loglines "$ID1" gone@rcpt.test)" ', class=bad-mailbox$' "class in the log"
assert_eq "bounce" "$(entry_field gone@rcpt.test how)" "how it was added"
assert_eq "bad-mailbox" "$(entry_field gone@rcpt.test class)" "class of the entry"
assert_contains "$(entry_field gone@rcpt.test reason)" "550 5.1.1 <gone@rcpt.test>: Recipient address rejected: User unknown" "reason: the server's words"
exp=$(entry_field gone@rcpt.test expires)
assert_eq "$(date -u -d @$(($(date +%s) + 30 * 86400)) +%Y-%m-%d)" "${exp%%T*}" "expiry: suppress_time (30d) from now"
assert_contains "$(grep -F "$ID1: <gone@rcpt.test> suppressed until" "$LOGFILE")" "class=bad-mailbox" "log of the addition"
assert_eq "" "$(entry_field ok@rcpt.test how)" "a delivered address is not listed"
assert_eq 1 "$(asked gone@rcpt.test)" "the MX was asked about gone@ once"

section "the next message to it bounces without a connection (-t)"
before=$(mx_sessions)
printf 'From: alice@src.example\nTo: Gone@RCPT.test\nSubject: again\nX-Test-Id: again\n\nagain\n' >"$SRV/again"
submit_file "$SRV/again" -f alice@src.example -t -i
ID2=$NEWID
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run
assert_eq "$before" "$(mx_sessions)" "sessions at the MX (none for a suppressed recipient)"
assert_eq 1 "$(asked gone@rcpt.test)" "the MX was not asked about gone@ again"
l=$(loglines "$ID2" Gone@RCPT.test)
assert_match "$l" 'relay=none, .*dsn=5\.1\.1, status=bounced \(suppressed until [0-9-]+ [0-9:]+ UTC \(550 5\.1\.1 <gone@rcpt\.test>: Recipient address rejected: User unknown\)\), class=bad-mailbox$' "log of the suppressed bounce"
dsn_table
check_dsn "$ID2" failed Gone@RCPT.test failed '^5\.1\.1$' "recipient suppressed until"
check_gone "$ID2"
# The bounce of a suppressed recipient does not push the expiry on.
assert_eq "$exp" "$(entry_field gone@rcpt.test expires)" "expiry unchanged by a suppressed bounce"

section "-bs: the RCPT is accepted, then bounced at pickup"
before=$(mx_sessions)
printf 'HELO client\r\nMAIL FROM:<alice@src.example>\r\nRCPT TO:<gone@rcpt.test>\r\nDATA\r\nSubject: bs\r\nX-Test-Id: bs\r\n\r\nbs\r\n.\r\nQUIT\r\n' >"$SRV/bs.in"
assert_exit 0 "$SENDMAIL" -bs <"$SRV/bs.in"
assert_match "$(grep '^250' "$OUT" | sed -n 3p)" '^250 2\.1\.5' "RCPT of a suppressed address accepted"
ID3=$(sed -n 's/^250 2.0.0 Ok: queued as \([0-9A-F]*\).*/\1/p' "$OUT" | tr -d '\r')
assert_exit 0 "$QUEUERUN" run
assert_eq "$before" "$(mx_sessions)" "sessions at the MX after -bs"
assert_match "$(loglines "$ID3" gone@rcpt.test)" 'status=bounced \(suppressed until' "-bs recipient bounced"

section "a lane with suppress = false still tries"
before=$(mx_sessions)
submit_file "$(message_file reset)" -f alice@src.example -O Lane=resets -i gone@rcpt.test ok2@rcpt.test
ID4=$NEWID
assert_exit 0 "$QUEUERUN" run
assert_eq $((before + 1)) "$(mx_sessions)" "sessions at the MX for the resets lane"
assert_eq 2 "$(asked gone@rcpt.test)" "the MX was asked about gone@ for the resets lane"
check_log "$ID4" gone@rcpt.test bounced '5\.1\.1' "User unknown"
assert_eq 1 "$(sinkq "len(to('ok2@rcpt.test'))")" "the other recipient delivered"

section "a domain entry"
assert_exit 0 "$QUEUERUN" suppress add @Blocked.TEST --for 1d --reason "complaints"
assert_eq "@blocked.test suppressed until $(date -u -d @$(($(date +%s) + 86400)) +%Y-%m-%d)" "$(cut -c1-41 "$OUT")" "add's answer"
before=$(mx_sessions)
submit_file "$(message_file dom)" -f alice@src.example -i someone@blocked.test
ID5=$NEWID
assert_exit 0 "$QUEUERUN" run
assert_eq "$before" "$(mx_sessions)" "sessions at the MX for a suppressed domain"
assert_match "$(loglines "$ID5" someone@blocked.test)" 'status=bounced \(suppressed until .* \(complaints\)\), class=policy$' "log of a domain-suppressed recipient"
assert_eq admin "$(entry_field @blocked.test how)" "how of an admin entry"

section "remove: mail goes again"
assert_exit 0 "$QUEUERUN" suppress remove GONE@rcpt.test
assert_exit 67 "$QUEUERUN" suppress remove gone@rcpt.test
assert_one_line_stderr "not on the suppression list"
before=$(mx_sessions)
submit_file "$(message_file removed)" -f alice@src.example -i gone@rcpt.test
assert_exit 0 "$QUEUERUN" run
assert_eq $((before + 1)) "$(mx_sessions)" "sessions at the MX once removed"
# ... and the bounce lists it again.
assert_eq bounce "$(entry_field gone@rcpt.test how)" "listed again by the new bounce"

section "add, import, export"
assert_exit 64 "$QUEUERUN" suppress add x@rcpt.test --for yesterday
assert_exit 65 "$QUEUERUN" suppress add not-an-address
assert_one_line_stderr "not an address"
assert_exit 64 "$QUEUERUN" suppress frobnicate
cat >"$SRV/import.bad" <<EOF
# a comment
one@rcpt.test 2030-01-01
two@rcpt.test soon
EOF
assert_exit 65 "$QUEUERUN" suppress import "$SRV/import.bad"
assert_contains "$(last_err)" "$SRV/import.bad:3:" "import error names file:line"
assert_eq "" "$(entry_field one@rcpt.test how)" "nothing imported from a bad file"
assert_exit 66 "$QUEUERUN" suppress import "$SRV/nonexistent"
cat >"$SRV/import" <<EOF
# from the old relay's blacklist
one@rcpt.test 2030-01-01
Two@Rcpt.Test 2030-06-01T12:00:00Z bounced in 2025

@old.example never
three@rcpt.test
four@rcpt.test 2001-01-01
EOF
assert_exit 0 "$QUEUERUN" suppress import "$SRV/import"
assert_eq "imported: 4 entries" "$(last_out)" "import count (the one already expired skipped)"
assert_eq "2030-01-01T00:00:00Z import" "$(entry_field one@rcpt.test expires) $(entry_field one@rcpt.test how)" "one@"
assert_eq "2030-06-01T12:00:00Z|bounced in 2025" "$(entry_field two@rcpt.test expires)|$(entry_field two@rcpt.test reason)" "two@"
assert_eq "null" "$(entry_field @old.example expires)" "a never-expiring domain entry"
assert_eq "$(date -u -d @$(($(date +%s) + 30 * 86400)) +%Y-%m-%d)" "$(entry_field three@rcpt.test expires | cut -c1-10)" "default expiry: suppress_time"
assert_exit 0 "$QUEUERUN" suppress export
cp "$OUT" "$SRV/exported"
assert_eq 6 "$(wc -l <"$SRV/exported")" "exported entries"
assert_contains "$(cat "$SRV/exported")" "two@rcpt.test 2030-06-01T12:00:00Z bounced in 2025" "export line"
assert_contains "$(cat "$SRV/exported")" "@old.example never" "export line of a domain"
# The export reads back into an empty list as the same list.
world roundtrip
assert_exit 0 "$QUEUERUN" suppress import "$SRV/exported"
assert_exit 0 "$QUEUERUN" suppress export
assert_files_equal "$SRV/exported" "$OUT" "export after import of an export"
assert_exit 0 "$QUEUERUN" suppress list 'two@*'
assert_eq 1 "$(grep -c '@' "$OUT")" "list PATTERN"
assert_exit 0 "$QUEUERUN" suppress list --json
assert_eq 6 "$("$PYTHON" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$OUT")" "list --json is JSON"

section "452 4.2.2 three times (three messages) suppresses for suppress_soft_time"
world soft
submit_file "$(message_file soft1)" -f alice@src.example -i full@rcpt.test
S1=$NEWID
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run --flush
assert_exit 0 "$QUEUERUN" run --flush
assert_eq 3 "$(rcpt_get "$S1" full@rcpt.test attempts)" "attempts of the first message"
assert_eq quota "$(rcpt_get "$S1" full@rcpt.test class)" "class of a full mailbox"
assert_eq "" "$(entry_field full@rcpt.test how)" "one message retried counts once"
submit_file "$(message_file soft2)" -f alice@src.example -i full@rcpt.test
assert_exit 0 "$QUEUERUN" run
assert_eq "" "$(entry_field full@rcpt.test how)" "two messages: not yet"
submit_file "$(message_file soft3)" -f alice@src.example -i full@rcpt.test
assert_exit 0 "$QUEUERUN" run
assert_eq "bounce quota" "$(entry_field full@rcpt.test how) $(entry_field full@rcpt.test class)" "third message: suppressed"
assert_eq "$(date -u -d @$(($(date +%s) + 3 * 86400)) +%Y-%m-%d)" "$(entry_field full@rcpt.test expires | cut -c1-10)" "for suppress_soft_time (3d)"
# The queued ones now bounce at their next attempt, with no session.
before=$(mx_sessions)
assert_exit 0 "$QUEUERUN" run --flush
assert_eq "$before" "$(mx_sessions)" "no session for queued mail suppressed meanwhile"
assert_match "$(loglines "$S1" full@rcpt.test | tail -1)" 'status=bounced \(suppressed until .*\), class=quota$' "queued mail bounced once suppressed"

section "expiry (suppress_time 2s)"
world expiry 'suppress_time = "2s"'
submit_file "$(message_file exp1)" -f alice@src.example -i gone@rcpt.test
assert_exit 0 "$QUEUERUN" run
assert_eq bounce "$(entry_field gone@rcpt.test how)" "listed for 2 s"
wait_for 10 sh -c "[ -z \"\$($QUEUERUN suppress list gone@rcpt.test)\" ]"
assert_eq "" "$("$QUEUERUN" suppress list gone@rcpt.test)" "gone from the list once expired"
assert_exit 0 "$QUEUERUN" run
assert_match "$(grep -F 'suppression list:' "$LOGFILE")" 'suppression list: 1 expired entry removed' "the runner removed the expired entry"
before=$(mx_sessions)
submit_file "$(message_file exp2)" -f alice@src.example -i gone@rcpt.test
assert_exit 0 "$QUEUERUN" run
assert_eq $((before + 1)) "$(mx_sessions)" "an expired entry stops nothing"

section "an import killed at any moment leaves whole batches"
for k in $(seq 1 20000); do echo "bulk$k@rcpt.test 90d old list"; done >"$SRV/big"
partial=0
for delay in 0.01 0.03 0.06 0.1 0.15; do
	world "crash$delay"
	"$QUEUERUN" suppress import "$SRV/big" >/dev/null 2>&1 &
	p=$!
	sleep "$delay"
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	assert_exit 0 "$QUEUERUN" suppress export
	n=$(grep -c '^bulk' "$OUT")
	assert_eq 0 "$((n % 1000))" "entries after a kill at ${delay}s: whole transactions of 1000 ($n)"
	[ "$n" -gt 0 ] && [ "$n" -lt 20000 ] && partial=$((partial + 1))
	assert_exit 0 "$QUEUERUN" suppress list --json
	assert_eq "$n" "$("$PYTHON" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$OUT")" "list --json after the kill"
	# The next import completes the list, over what the killed one left.
	assert_exit 0 "$QUEUERUN" suppress import "$SRV/big"
	assert_exit 0 "$QUEUERUN" suppress export
	assert_eq 20000 "$(grep -c '^bulk' "$OUT")" "a whole import after the kill"
done
say "imports killed half-way: $partial of 5"

section "concurrent submitters, runners and admins"
world busy
pids=()
for k in 1 2 3 4 5 6 7 8 9 10; do
	( printf 'From: alice@src.example\nTo: dead%d@rcpt.test, ok%d@rcpt.test\nSubject: busy\nX-Test-Id: busy-%d\n\nbusy\n' "$k" "$k" "$k" |
	    "$SENDMAIL" -f alice@src.example -t -i ) &
	pids+=($!)
	"$QUEUERUN" suppress add "admin$k@rcpt.test" --reason "by hand $k" >/dev/null &
	pids+=($!)
done
"$QUEUERUN" run >"$SRV/run1.out" 2>&1 &
pids+=($!)
"$QUEUERUN" run >"$SRV/run2.out" 2>&1 &
pids+=($!)
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
assert_eq 0 "$bad" "processes that failed"
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" suppress export
assert_eq 20 "$(wc -l <"$OUT")" "entries: 10 bounced, 10 added by hand"
assert_eq 20 "$(cut -d' ' -f1 "$OUT" | sort -u | wc -l)" "distinct entries"
for k in 1 2 3 4 5 6 7 8 9 10; do
	assert_eq bounce "$(entry_field dead$k@rcpt.test how)" "dead$k@ listed by its bounce"
	assert_eq admin "$(entry_field admin$k@rcpt.test how)" "admin$k@ listed by hand"
done
assert_eq 10 "$(sinkq "len([m for m in M if (m.get('x_test_id') or '').startswith('busy-')])")" "the good recipients delivered"
finish
