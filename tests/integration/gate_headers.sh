#!/bin/bash
# NAME
#	gate_headers.sh - header rules: ignore, warn, hold, reject, lane;
#	only_user and only_lane; bad rules refused with file:line
# DESCRIPTION
#	A test DNS server and a sink (tests/servers/smtpsink.py, saving
#	what it accepts) as the MX of rcpt.test on 127.0.0.170. Rules as the
#	issue writes them, plus hold, lane and scoped ones. Asserts:
#	  - ignore: a "Received: from web1.internal" line is gone from the
#	    message the sink receives, other Received: lines stay;
#	  - warn: "QUEUEID: warning: header Subject: ..." in the log with
#	    the queue id of the message, which is delivered;
#	  - reject: exit 65, nothing queued, the rule's text on stderr; in
#	    sendmail -bs "550 5.7.1 ..." for that message while the next
#	    message of the session is queued (250);
#	  - only_user: a reject rule for another user does nothing;
#	    only_lane: a rule for the bulk lane does nothing on priority;
#	  - lane: X-Campaign: moves the message to bulk (queuerun show);
#	  - hold: queued with "held: yes", never delivered by queuerun run
#	    or run --id, nor by a flush, while the rest of the queue is;
#	    log "(queue hold)";
#	  - folded headers are matched joined;
#	  - a bad expression, a bad action, an unknown lane: exit 78 with
#	    file:line, nothing queued.
#	Takes about 5 seconds.
# SEE ALSO
#	gate_limits.sh, gate_spam.sh, mxlane.conf(5)
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN"
IP_MX=127.0.0.170

cat >"$SRV/zone" <<EOF
rcpt.test	MX 10 mx.rcpt.test
mx.rcpt.test	A $IP_MX
EOF
start_dns "$SRV/zone"
start_sink sink --listen $IP_MX:@P@ --save-dir "$SRV/saved"

RULES='
header_rule "internal-received" { match = "^Received: from [^ ]+\\.internal\\b" action = "ignore" }
header_rule "subject-to-log"    { match = "^Subject:" action = "warn" }
header_rule "no-viagra"         { match = "^Subject:.*viagra" action = "reject 5.7.1 message content refused" only_user = "root" }
header_rule "other-user"        { match = "^Subject:.*casino" action = "reject" only_user = "www-data" }
header_rule "bulk-only"         { match = "^Subject:.*lottery" action = "reject 5.7.2 no lotteries" only_lane = "bulk" }
header_rule "campaign"          { match = "^X-Campaign:" action = "lane bulk" }
header_rule "hold-me"           { match = "^X-Hold: *yes" action = "hold" }
header_rule "folded"            { match = "^X-Folded: one two" action = "hold" }
'
setup main "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" "$RULES"

saved_of() { sinkq "[m['file'] for m in tid('$1')][0]"; }

section "ignore"
printf 'Received: from web1.internal (web1.internal [10.0.0.5])\n\tby app.example; Mon, 1 Dec 2026 10:00:00 +0000\nReceived: from outside.example by app.example\nFrom: alice@src.example\nTo: bob@rcpt.test\nSubject: report\nX-Test-Id: ign\n\nhi\n' >"$SRV/ign"
submit_file "$SRV/ign" -f alice@src.example -t -i
IGN=$NEWID
assert_eq 0 "$(hdr "$IGN" Received | grep -c 'web1.internal')" "the internal Received: line is not queued"
assert_eq 1 "$(hdr "$IGN" Received | grep -c 'outside.example')" "the other Received: line is kept"
assert_contains "$(grep -F "$IGN: warning: header Subject: report from local; from=<alice@src.example> user=root (rule subject-to-log)" "$LOGFILE")" "$IGN" "warn log line with the queue id"
assert_exit 0 "$QUEUERUN" run
if wait_for 10 sink_true "len(tid('ign')) == 1"; then pass; else fail "message ign not at the sink"; fi
f=$(saved_of ign)
assert_eq 0 "$(grep -c 'web1.internal' "$f")" "the sink got no internal Received: line"
assert_eq 1 "$(grep -c 'outside.example' "$f")" "the sink got the other Received: line"

section "reject (command line and -bs)"
printf 'From: alice@src.example\nTo: bob@rcpt.test\nSubject: cheap VIAGRA now\nX-Test-Id: rej\n\nbuy\n' >"$SRV/rej"
before=$(queue_count)
assert_exit 65 "$SENDMAIL" -f alice@src.example -t -i <"$SRV/rej"
assert_contains "$(last_err)" "5.7.1 message content refused" "stderr of the rejected submission"
assert_eq "$before" "$(queue_count)" "nothing queued for a rejected message"
assert_contains "$(grep -F 'NOQUEUE: reject: header Subject: cheap VIAGRA now' "$LOGFILE")" "(rule no-viagra)" "reject log line"
assert_eq 1 "$(grep -c 'cheap VIAGRA' "$LOGFILE")" "log lines about the rejected message"
{
	printf 'HELO app.example\r\nMAIL FROM:<alice@src.example>\r\nRCPT TO:<bob@rcpt.test>\r\nDATA\r\n'
	printf 'Subject: viagra again\r\nX-Test-Id: rejbs\r\n\r\nbuy\r\n.\r\n'
	printf 'MAIL FROM:<alice@src.example>\r\nRCPT TO:<bob@rcpt.test>\r\nDATA\r\n'
	printf 'Subject: fine\r\nX-Test-Id: okbs\r\n\r\nhello\r\n.\r\nQUIT\r\n'
} >"$SRV/bs.in"
assert_exit 0 "$SENDMAIL" -bs <"$SRV/bs.in"
assert_eq 1 "$(grep -c '^550 5.7.1 message content refused' "$OUT")" "-bs: 550 5.7.1 for the rejected message"
assert_eq 1 "$(grep -c '^250 2.0.0 Ok: queued as' "$OUT")" "-bs: the next message is queued"
assert_eq $((before + 1)) "$(queue_count)" "one message queued by the -bs session"

section "only_user and only_lane"
printf 'From: alice@src.example\nTo: bob@rcpt.test\nSubject: casino lottery\nX-Test-Id: scoped\n\nx\n' >"$SRV/scoped"
submit_file "$SRV/scoped" -f alice@src.example -t -i
assert_eq priority "$(env_get "$NEWID" lane)" "lane of the scoped message"
printf 'From: alice@src.example\nTo: bob@rcpt.test\nX-Campaign: winter\nSubject: lottery\nX-Test-Id: bulklot\n\nx\n' >"$SRV/bulklot"
assert_exit 65 "$SENDMAIL" -f alice@src.example -t -i <"$SRV/bulklot"
assert_contains "$(last_err)" "5.7.2 no lotteries" "only_lane: the rule applies once the lane is bulk"

section "lane"
printf 'From: alice@src.example\nTo: bob@rcpt.test\nX-Campaign: winter\nSubject: news\nX-Test-Id: lane\n\nx\n' >"$SRV/lane"
submit_file "$SRV/lane" -f alice@src.example -t -i
assert_eq bulk "$(env_get "$NEWID" lane)" "lane of a message with X-Campaign:"

section "hold"
printf 'From: alice@src.example\nTo: bob@rcpt.test\nX-Hold: yes\nSubject: wait\nX-Test-Id: held\n\nx\n' >"$SRV/held"
submit_file "$SRV/held" -f alice@src.example -t -i
HELD=$NEWID
printf 'From: alice@src.example\nTo: bob@rcpt.test\nX-Folded: one\n two\nSubject: folded\nX-Test-Id: fold\n\nx\n' >"$SRV/fold"
submit_file "$SRV/fold" -f alice@src.example -t -i
FOLD=$NEWID
assert_contains "$(grep -F "$HELD: hold: header X-Hold: yes" "$LOGFILE")" "(rule hold-me)" "hold log line"
assert_contains "$(grep -F "$HELD: from=<alice@src.example>" "$LOGFILE")" "(queue hold)" "queued on hold"
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run --id "$HELD"
assert_exit 0 timeout 30 "$QUEUERUN" run --flush
if wait_for 10 sink_true "len(tid('lane')) == 1 and len(tid('scoped')) == 1 and len(tid('okbs')) == 1"; then pass; else
	fail "the queue's other messages were not delivered"; fi
assert_eq 0 "$(sinkq "len(tid('held')) + len(tid('fold'))")" "held messages delivered"
assert_eq "yes" "$(env_get "$HELD" held)" "queuerun show: held"
assert_eq "yes" "$(env_get "$FOLD" held)" "a folded header matches joined"
assert_eq "queued" "$(rcpt_get "$HELD" bob@rcpt.test state)" "the held recipient's state"
assert_eq "$(printf '%s\n%s' "$FOLD" "$HELD" | sort)" "$(queue_ids | sort)" "only the held messages are left"

section "bad rules: file:line, exit 78"
bad() {
	local what=$1 line=$2 rule=$3 needle=$4
	setup bad "$rule"
	printf 'Subject: x\n\nx\n' >"$SRV/x"
	assert_exit 78 "$SENDMAIL" -i bob@rcpt.test <"$SRV/x"
	assert_contains "$(last_err)" "$CONF:$line: " "$what: file:line"
	assert_contains "$(last_err)" "$needle" "$what: the reason"
	assert_eq 0 "$(queue_count)" "$what: nothing queued"
}
# write_config writes 8 lines before the extra ones
bad "bad expression" 9 'header_rule "x" { match = "^Subject: (" action = "warn" }' 'not a regular expression'
bad "bad action" 9 'header_rule "y" { match = "^Subject:" action = "discard" }' 'action "discard"'
bad "unknown lane" 10 $'\nheader_rule "z" {\n match = "^Subject:" action = "lane nosuch" }' 'lane "nosuch" is not declared'
bad "no match" 9 'header_rule "w" { action = "warn" }' 'match is missing'

finish
