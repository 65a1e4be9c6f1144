#!/bin/bash
# NAME
#	gate_spam.sh - the lanes' content gate against a real spamd
# DESCRIPTION
#	Starts SpamAssassin's spamd (Debian's spamd package, the rules
#	Debian ships in /usr/share/spamassassin, no sa-update) on
#	127.0.0.171 and a free port, with a private site configuration
#	that needs no network (-L, no DNS, no Bayes), and a sink as the MX
#	of rcpt.test on 127.0.0.170 that defers later@ with 451. Lanes:
#	web (spam_check at that spamd, threshold 5, failure defer),
#	webopen (the same, failure deliver) and a lane whose spamd never
#	answers (timeout 2s). Asserts:
#	  - GTUBE is held (queuerun show: held yes, not at the sink, queued
#	    recipients) and logged with its score and GTUBE among the rules;
#	  - a plain message passes and is delivered, logged with its score;
#	    a message with three recipients, one deferred by the MX and
#	    tried again, is scored once; so is one to two destinations
#	    (other.test's MX is 127.0.0.173), whose recipients two
#	    workers deliver, plain or GTUBE (held, nothing sent);
#	  - a message on a lane without spam_check is not scored;
#	  - spamd stopped: on web the message is deferred (attempt counted,
#	    "content check unavailable" its last response, not delivered);
#	    on webopen it is delivered, logged "delivered unchecked";
#	  - spamd down for longer than maximal_queue_lifetime (1s): the
#	    recipient expires (5.4.7, logged) and the message goes;
#	  - a spamd that accepts and never answers holds the pass up for
#	    no more than the time-out (2 s): the pass ends within 12 s and
#	    the message is deferred.
#	Takes about 15 seconds (spamd's start is about 3).
# SEE ALSO
#	gate_headers.sh, gate_limits.sh, mxlane.conf(5)
. "$(dirname "$0")/../lib.sh"

need_cmd spamd ss
need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN" /usr/share/spamassassin/50_scores.cf \
    /etc/spamassassin/v320.pre
IP_MX=127.0.0.170
IP_SPAMD=127.0.0.171
IP_MUTE=127.0.0.172

IP_MX2=127.0.0.173
cat >"$SRV/zone" <<EOF
rcpt.test	MX 10 mx.rcpt.test
mx.rcpt.test	A $IP_MX
other.test	MX 10 mx.other.test
mx.other.test	A $IP_MX2
EOF
start_dns "$SRV/zone"
printf 'later\t451 4.3.0 <later@rcpt.test>: try again later\n' >"$SRV/replies"
start_sink sink --listen $IP_MX:@P@ --listen $IP_MX2:@P@ --rcpt-replies "$SRV/replies"

# ---------------------------------------------------------------- spamd

# spamd's children run as nobody: its site configuration must be
# readable by nobody, so it lives outside the (0700) scratch directory.
SA=$(mktemp -d /tmp/mxlane-spamd.XXXXXX)
chmod 0755 "$SA"
on_exit "rm -rf '$SA'"
cp /etc/spamassassin/*.pre "$SA/"
cat >"$SA/local.cf" <<EOF
# offline: no DNS blocklists, no Bayes, no network tests
dns_available no
skip_rbl_checks 1
use_bayes 0
bayes_auto_learn 0
EOF
chmod 0644 "$SA"/*
start_spamd() {
	local try
	for try in 1 2 3 4 5; do
		SPAMD_PORT=$((20000 + RANDOM % 12000))
		rm -f "$SA/pid"
		spamd -L -x -i $IP_SPAMD -p "$SPAMD_PORT" --siteconfigpath="$SA" \
		    --min-children=1 --max-children=2 -u nobody --syslog=stderr \
		    --pidfile="$SA/pid" >"$SRV/spamd.out" 2>&1 &
		SPAMD_PID=$!
		track_pid "$SPAMD_PID"
		if wait_for 60 sh -c "ss -Hltn 'sport = :$SPAMD_PORT' | grep -q $IP_SPAMD || ! kill -0 $SPAMD_PID 2>/dev/null" &&
		    kill -0 "$SPAMD_PID" 2>/dev/null; then
			pass
			return 0
		fi
		grep -q "in use" "$SRV/spamd.out" || break
	done
	fail "spamd did not start" "$(tail -5 "$SRV/spamd.out")"
	finish
}
t0=$(date +%s%N)
start_spamd
say "spamd listening after $(elapsed_ms "$t0") ms"

# A listener that accepts and never answers (a stuck spamd).
"$PYTHON" -c '
import socket, sys, time
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(8)
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
conns = []
end = time.time() + 300
while time.time() < end:
    c, _ = s.accept(); conns.append(c)
' $IP_MUTE "$SRV/mute.port" &
track_pid $!
wait_for 10 test -s "$SRV/mute.port"
MUTE_PORT=$(cat "$SRV/mute.port")

setup main "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
    'minimal_backoff_time = "1h"' 'maximal_backoff_time = "2h"' \
    "lane web { spam_check = \"$IP_SPAMD:$SPAMD_PORT\" spam_threshold = 5.0 spam_check_timeout = \"10s\" spam_check_failure = \"defer\" }" \
    "lane webopen { spam_check = \"$IP_SPAMD:$SPAMD_PORT\" spam_check_failure = \"deliver\" }" \
    "lane stuck { spam_check = \"$IP_MUTE:$MUTE_PORT\" spam_check_timeout = \"2s\" }"

GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
# msg TESTID BODY: a message file from a web site
msg() {
	local f=$SRV/msg.$1
	printf 'From: Shop <shop@src.example>\nTo: customer@rcpt.test\nDate: %s\nMessage-ID: <%s@src.example>\nSubject: Your order %s\nX-Test-Id: %s\n\n%s\n' \
	    "$(date -R)" "$1" "$1" "$1" "$2" >"$f"
	echo "$f"
}
scores() { grep -F "mxlane/spamcheck[" "$LOGFILE" | grep -cF ": $1: "; }

section "GTUBE is held, a plain message passes"
submit_file "$(msg gtube "$GTUBE")" -f shop@src.example -O Lane=web -i customer@rcpt.test
SPAM=$NEWID
submit_file "$(msg plain "Thank you for your order. It ships tomorrow.")" -f shop@src.example -O Lane=web -i a@rcpt.test b@rcpt.test later@rcpt.test
PLAIN=$NEWID
submit_file "$(msg nogate "$GTUBE")" -f shop@src.example -O Lane=bulk -i c@rcpt.test
NOGATE=$NEWID
submit_file "$(msg two "See you on Monday.")" -f shop@src.example -O Lane=web -i x@rcpt.test y@other.test
TWO=$NEWID
submit_file "$(msg twospam "$GTUBE")" -f shop@src.example -O Lane=web -i x@rcpt.test y@other.test
TWOSPAM=$NEWID
assert_exit 0 timeout 60 "$QUEUERUN" run
if wait_for 10 sink_true "len(tid('plain')) == 1 and len(tid('nogate')) == 1 and len(tid('two')) == 2"; then pass; else
	fail "plain and ungated messages not delivered" "$(tail -5 "$LOGFILE")"; fi
assert_eq 1 "$(scores "$TWO")" "a message to two destinations (two workers) was scored once"
assert_eq 1 "$(scores "$TWOSPAM")" "GTUBE to two destinations was scored once"
assert_eq yes "$(env_get "$TWOSPAM" held)" "GTUBE to two destinations is held"
assert_eq 0 "$(sinkq "len(tid('twospam'))")" "GTUBE to two destinations at the sink"
assert_eq "" "$(ls "$SPOOL/spamcheck")" "scoring locks left in the spool"
assert_eq 0 "$(sinkq "len(tid('gtube'))")" "GTUBE messages at the sink"
assert_eq yes "$(env_get "$SPAM" held)" "GTUBE is held"
assert_eq queued "$(rcpt_get "$SPAM" customer@rcpt.test state)" "the held recipient is queued"
l=$(grep -F "$SPAM: hold: spam score" "$LOGFILE")
assert_match "$l" "mxlane/spamcheck\[[0-9]+\]: $SPAM: hold: spam score [0-9]{3,}\.[0-9] above 5\.0 \(lane web\) rules=.*GTUBE" "hold log line"
l=$(grep -F "$PLAIN: spam score" "$LOGFILE")
assert_match "$l" "$PLAIN: spam score -?[0-9.]+, not above 5\.0 \(lane web\) rules=" "pass log line"
assert_eq 0 "$(scores "$NOGATE")" "a lane without spam_check is not scored"
assert_exit 0 timeout 60 "$QUEUERUN" run --flush
check_rcpt "$PLAIN" later@rcpt.test queued 2
assert_eq 1 "$(scores "$PLAIN")" "the plain message was scored once in two attempts"
assert_eq yes "$(env_get "$SPAM" held)" "GTUBE is still held after a flush"
assert_eq 0 "$(sinkq "len(tid('gtube'))")" "GTUBE messages at the sink after a flush"

section "spamd stopped: spam_check_failure"
kill -TERM "$SPAMD_PID"
wait "$SPAMD_PID" 2>/dev/null
if wait_for 10 sh -c "! ss -Hltn 'sport = :$SPAMD_PORT' | grep -q $IP_SPAMD"; then pass; else fail "spamd still listening"; fi
submit_file "$(msg deferred "Your invoice is attached.")" -f shop@src.example -O Lane=web -i d@rcpt.test
DEF=$NEWID
submit_file "$(msg open "Your invoice is attached.")" -f shop@src.example -O Lane=webopen -i e@rcpt.test
OPEN=$NEWID
assert_exit 0 timeout 60 "$QUEUERUN" run
if wait_for 10 sink_true "len(tid('open')) == 1"; then pass; else fail "webopen message not delivered"; fi
assert_eq 0 "$(sinkq "len(tid('deferred'))")" "web message delivered without its check"
check_rcpt "$DEF" d@rcpt.test queued 1
assert_contains "$(rcpt_get "$DEF" d@rcpt.test last_response)" "content check unavailable" "last response of the deferred recipient"
assert_contains "$(grep -F "$OPEN: spam check failed" "$LOGFILE")" "delivered unchecked" "log of the unchecked delivery"
assert_contains "$(grep -F "$DEF: spam check failed" "$LOGFILE")" "; deferred (lane web" "log of the deferral"
check_log "$DEF" d@rcpt.test deferred '4\.7\.0' "content check unavailable"

section "spamd down past maximal_queue_lifetime: the message expires"
setup expire "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
    'maximal_queue_lifetime = "1s"' \
    "lane web { spam_check = \"$IP_SPAMD:$SPAMD_PORT\" }"
submit_file "$(msg expire "Old news.")" -f shop@src.example -O Lane=web -i g@rcpt.test
EXP=$NEWID
sleep 1.2
assert_exit 0 timeout 60 "$QUEUERUN" run
check_log "$EXP" g@rcpt.test expired '5\.4\.7' "message expired in the queue: 4.7.0 content check unavailable"
assert_exit 0 timeout 60 "$QUEUERUN" run
check_gone "$EXP"
assert_eq 0 "$(sinkq "len(tid('expire'))")" "expired message delivered"

section "a spamd that never answers: the time-out"
setup main2 "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
    'minimal_backoff_time = "1h"' 'maximal_backoff_time = "2h"' \
    "lane stuck { spam_check = \"$IP_MUTE:$MUTE_PORT\" spam_check_timeout = \"2s\" }"
submit_file "$(msg stuck "Hello.")" -f shop@src.example -O Lane=stuck -i f@rcpt.test
STUCK=$NEWID
t0=$(date +%s%N)
assert_exit 0 timeout 60 "$QUEUERUN" run
ms=$(elapsed_ms "$t0")
say "a pass with a mute spamd took $ms ms"
assert_true "[ $ms -lt 12000 ]" "the pass took at most 12 s ($ms ms)"
check_rcpt "$STUCK" f@rcpt.test queued 1
assert_contains "$(grep -F "$STUCK: spam check failed" "$LOGFILE")" "within 2s" "log of the time-out"

finish
