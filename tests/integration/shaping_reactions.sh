#!/bin/bash
# NAME
#	shaping_reactions.sh - reactions to what a provider says about a
#	source address: suspend, throttle, defer-provider, "after N in
#	WINDOW", queuerun resume
# DESCRIPTION
#	One sink plays yahoo's MX; it greets connections from 127.0.0.11
#	with Yahoo's TSS04 "421 4.7.0 [TSS04] Messages from 127.0.0.11
#	temporarily deferred ..." and closes, as Yahoo does to a source it
#	throttles; 127.0.0.12 gets normal service. Asserts:
#	  - the rule yahoo-tss04 (action "suspend 1h") suspends 127.0.0.11
#	    for yahoo at the first such reply: it gets exactly one
#	    connection, the 20 messages of the batch all arrive from
#	    127.0.0.12 in the same single pass (so none was deferred with
#	    backoff: minimal_backoff_time is 5 minutes), none is lost or
#	    left, and the log says "source 127.0.0.11 suspended for yahoo
#	    until ... by rule yahoo-tss04: 421 4.7.0 [TSS04] ...";
#	  - the suspension holds in a later pass (another process): no new
#	    connection from 127.0.0.11; queuerun route shows it and names
#	    127.0.0.12 as the next source;
#	  - queuerun resume yahoo 127.0.0.11 ends it (logged, route no longer
#	    shows it), and the next message's connection comes from
#	    127.0.0.11 again (and is suspended again); bad resume arguments
#	    exit 64;
#	  - with after = "3 in 10m" and one source, the first two TSS04
#	    replies are ordinary deferrals (with backoff) and only the third
#	    suspends; the mail then waits, with no connection, and route
#	    says why;
#	  - "throttle 2/h for 1h" lowers the rate of (provider, source): route
#	    shows it and the log says so; "defer-provider 1h" stops every
#	    source of the pool: the healthy 127.0.0.11 gets no connection;
#	  - a throttle started by a RCPT reply (452 ... rcpt452) really
#	    lowers the rate: of the next 3 messages 1 goes, 2 are held
#	    (not deferred);
#	Takes about 20 seconds.
# SEE ALSO
#	shaping_warmup.sh, routing_sources.sh
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN"

MX=127.0.0.40
TSS04="421 4.7.0 [TSS04] Messages from 127.0.0.11 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
cat >"$SRV/zone" <<EOF
yahoo.com			MX 1 mta5.am0.yahoodns.net
mta5.am0.yahoodns.net		A $MX
EOF
start_dns "$SRV/zone"
start_sink sink --listen $MX:@P@ --peer-greeting "127.0.0.11=$TSS04" \
    --peer-greeting "127.0.0.13=421 4.7.1 defer-me: too much mail from this network" \
    --max-lifetime 600

# config POOL-SOURCES RULE-LINES...: yahoo's pool and the rules
config() {
	local sources=$1
	shift
	setup "$NAME" "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
	    "pool yahoo { $sources }" \
	    'provider yahoo { domains = { "yahoo.com" } pool = "yahoo" messages_per_connection = 5 }' \
	    "$@"
}
TWO='source "127.0.0.11" { helo = "y1.example.org" } source "127.0.0.12" { helo = "y2.example.org" }'
RULE='reply "yahoo-tss04" { provider = "yahoo" code = "421" status = "4.7.0" text = "\\[TSS04\\]" class = "spam-block" action = "suspend 1h" }'
sessions_from() { sinkq "len([s for s in S if s['peer_ip'] == '$1'])"; }

# ---------------------------------------------------------------- suspend

section "TSS04 on one source: suspended, the other source carries the mail"
NAME=suspend config "$TWO" "$RULE"
queue_bs 20 news@src.example 'u%d@yahoo.com' susp -O Lane=bulk
assert_queue_count 20 "messages queued"
assert_exit 0 "$QUEUERUN" route --lane bulk u0@yahoo.com
first=$(route_field "$(last_out)" source | cut -d' ' -f1)
assert_eq 127.0.0.11 "$first" "route: the first source (before any reply)"
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "queue after one pass"
assert_eq 20 "$(sinkq "len(set(m['x_test_id'] for m in tids('susp-')))")" "distinct messages arrived"
assert_eq 20 "$(sinkq "len(tids('susp-'))")" "messages arrived (none twice)"
assert_eq "['127.0.0.12']" "$(sinkq "sorted(set(m['peer_ip'] for m in tids('susp-')))")" \
    "source addresses the messages arrived from"
assert_eq 1 "$(sessions_from 127.0.0.11)" "connections from the suspended 127.0.0.11"
line=$(grep -F 'source 127.0.0.11 suspended for yahoo until' "$LOGFILE")
assert_match "$line" 'shaping.*: source 127\.0\.0\.11 suspended for yahoo until [0-9-]+ [0-9:]+ UTC by rule yahoo-tss04: 421 4\.7\.0 \[TSS04\] Messages from 127\.0\.0\.11 ' \
    "log line of the suspension"
assert_eq 1 "$(grep -c 'shaping\[[0-9]*\]: source 127.0.0.11 suspended for yahoo until' "$LOGFILE")" "suspensions logged"
deferred=$(grep -F 'status=deferred' "$LOGFILE")
assert_ne "" "$deferred" "the TSS04'd messages are logged as deferred"
assert_eq "" "$(printf '%s\n' "$deferred" | grep -v 'source suspended, due again at once; no backoff')" \
    "deferrals with backoff (none)"

section "the suspension holds in the next pass; route shows it"
assert_exit 0 "$QUEUERUN" route --lane bulk u0@yahoo.com
R=$(last_out)
assert_match "$R" '^  shaping: source 127\.0\.0\.11 suspended for yahoo until .* by rule yahoo-tss04: 421 4\.7\.0 \[TSS04\]' \
    "route: the suspension"
assert_eq 127.0.0.12 "$(route_field "$R" source | cut -d' ' -f1)" "route: the next source while .11 is suspended"
queue_bs 6 news@src.example 'v%d@yahoo.com' again -O Lane=bulk
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "queue after the second pass"
assert_eq "['127.0.0.12']" "$(sinkq "sorted(set(m['peer_ip'] for m in tids('again-')))")" \
    "second pass: source addresses"
assert_eq 1 "$(sessions_from 127.0.0.11)" "connections from 127.0.0.11 after the second pass"

section "queuerun resume ends it"
assert_exit 64 "$QUEUERUN" resume
assert_exit 64 "$QUEUERUN" resume nosuch
assert_contains "$(last_err)" "nosuch" "resume of an unknown provider: says which"
assert_exit 64 "$QUEUERUN" resume yahoo not-an-address
assert_exit 0 "$QUEUERUN" resume yahoo 127.0.0.12
assert_eq "resumed: 0 for yahoo from 127.0.0.12" "$(last_out)" "resume of a source with nothing in force"
assert_exit 0 "$QUEUERUN" resume yahoo 127.0.0.11
assert_eq "resumed: 1 for yahoo from 127.0.0.11" "$(last_out)" "resume output"
assert_match "$(grep -F 'no longer suspended' "$LOGFILE")" \
    'source 127\.0\.0\.11 no longer suspended for yahoo \(rule yahoo-tss04\): resumed by queuerun resume' \
    "log line of the resume"
assert_exit 0 "$QUEUERUN" route --lane bulk u0@yahoo.com
assert_no_match "$(last_out)" '^  shaping:' "route after resume: nothing in force"
assert_eq 127.0.0.11 "$(route_field "$(last_out)" source | cut -d' ' -f1)" \
    "route after resume: 127.0.0.11 (behind its share) is next"
queue_bs 1 news@src.example 'w%d@yahoo.com' after -O Lane=bulk
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "queue after the resumed pass"
assert_eq 2 "$(sessions_from 127.0.0.11)" "connections from 127.0.0.11 after resume (one more)"
assert_eq 2 "$(grep -c 'shaping\[[0-9]*\]: source 127.0.0.11 suspended for yahoo until' "$LOGFILE")" "suspended again by the next TSS04"
assert_eq "['127.0.0.12']" "$(sinkq "sorted(set(m['peer_ip'] for m in tids('after-')))")" \
    "the message after resume still arrives from 127.0.0.12"

# ---------------------------------------------------------------- after N

section "after = \"3 in 10m\": only the third match suspends"
start_sink sink2 --listen $MX:@P@ --peer-greeting "127.0.0.11=$TSS04" --max-lifetime 600
NAME=after config 'source "127.0.0.11" { }' \
    'reply "yahoo-tss04" { provider = "yahoo" text = "TSS04" class = "spam-block" action = "suspend 1h" after = "3 in 10m" }'
for i in 1 2 3; do
	printf 'From: a@src.example\nX-Test-Id: thr-%d\n\nthreshold %d\n' "$i" "$i" |
	    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk "t$i@yahoo.com"
	assert_exit 0 "$QUEUERUN" run
	assert_eq "$i" "$(sessions_from 127.0.0.11)" "connections after pass $i"
	if [ "$i" -lt 3 ]; then
		assert_eq 0 "$(grep -c 'shaping\[[0-9]*\]: source 127.0.0.11 suspended for yahoo' "$LOGFILE")" "suspensions after $i matches"
		assert_match "$(grep -F "to=<t$i@yahoo.com>" "$LOGFILE")" 'status=deferred \(host .*TSS04.*\), class=spam-block$' \
		    "match $i: an ordinary deferral"
		assert_not_contains "$(grep -F "to=<t$i@yahoo.com>" "$LOGFILE")" "no backoff" \
		    "match $i: deferred with backoff"
	fi
done
assert_eq 1 "$(grep -c 'shaping\[[0-9]*\]: source 127.0.0.11 suspended for yahoo until .* by rule yahoo-tss04' "$LOGFILE")" \
    "suspensions after the third match"
assert_contains "$(grep -F 'to=<t3@yahoo.com>' "$LOGFILE")" "no backoff" "the third match's mail: no backoff"
assert_exit 0 "$QUEUERUN" route --lane bulk t9@yahoo.com
assert_match "$(route_field "$(last_out)" source)" '^none ready: mail for yahoo waits \(source 127\.0\.0\.11 suspended for yahoo until .* by rule yahoo-tss04\)$' \
    "route: no source ready"
printf 'From: a@src.example\nX-Test-Id: thr-4\n\nwaits\n' |
    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk t4@yahoo.com
assert_exit 0 "$QUEUERUN" run --flush
assert_eq 3 "$(sessions_from 127.0.0.11)" "connections while the only source is suspended (none more)"
assert_queue_count 4 "messages waiting for the suspension to end"
assert_contains "$(grep -F 'wait until the provider takes mail again' "$LOGFILE")" \
    "source 127.0.0.11 suspended for yahoo" "log: why the mail waits"
assert_eq "" "$(grep -F 'to=<t4@yahoo.com>' "$LOGFILE")" "the waiting message: no delivery attempt logged"

# ---------------------------------------------------------------- throttle, defer-provider

section "throttle RATE for DURATION, defer-provider DURATION"
start_sink sink3 --listen $MX:@P@ --peer-greeting "127.0.0.11=$TSS04" \
    --peer-greeting "127.0.0.13=421 4.7.1 defer-me: too much mail from this network" --max-lifetime 600
NAME=throttle config 'source "127.0.0.11" { } source "127.0.0.13" { }' \
    'reply "slow-down" { provider = "yahoo" text = "TSS04" class = "rate-limit" action = "throttle 2/h for 1h" }' \
    'reply "go-away" { provider = "yahoo" text = "defer-me" class = "rate-limit" action = "defer-provider 1h" }'
printf 'From: a@src.example\nX-Test-Id: thro-1\n\nthrottle\n' |
    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk x1@yahoo.com
assert_exit 0 "$QUEUERUN" run
assert_match "$(grep -F 'throttled to' "$LOGFILE")" 'source 127\.0\.0\.11 throttled to 2/h for yahoo until .* by rule slow-down: 421 4\.7\.0 \[TSS04\]' \
    "log line of the throttle"
assert_exit 0 "$QUEUERUN" route --lane bulk x1@yahoo.com
assert_match "$(last_out)" '^  shaping: source 127\.0\.0\.11 throttled to 2/h for yahoo until ' "route: the throttle"
# .13's turn: its reply defers the whole provider
printf 'From: a@src.example\nX-Test-Id: thro-2\n\ndefer\n' |
    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk x2@yahoo.com
assert_exit 0 "$QUEUERUN" run --flush
assert_eq 1 "$(sessions_from 127.0.0.13)" "connections from 127.0.0.13"
assert_match "$(grep -F 'deferred until' "$LOGFILE")" 'provider yahoo deferred until .* by rule go-away \(reply to source 127\.0\.0\.13\): 421 4\.7\.1 defer-me' \
    "log line of the provider deferral"
s11=$(sessions_from 127.0.0.11)
assert_exit 0 "$QUEUERUN" run --flush
assert_eq "$s11" "$(sessions_from 127.0.0.11)" "connections from any source while yahoo is deferred (none)"
assert_exit 0 "$QUEUERUN" route --lane bulk x1@yahoo.com
assert_match "$(last_out)" '^  shaping: provider yahoo deferred until .* by rule go-away' "route: the provider deferral"
assert_exit 0 "$QUEUERUN" resume yahoo
assert_eq "resumed: 2 for yahoo" "$(last_out)" "resume of every reaction for yahoo"
assert_match "$(grep -F 'no longer deferred' "$LOGFILE")" 'provider yahoo no longer deferred \(rule go-away\): resumed by queuerun resume' \
    "log line of the provider's resume"

section "a throttle reaction really lowers the rate"
NAME=throttle2 config 'source "127.0.0.14" { }' \
    'reply "slow-rcpt" { provider = "yahoo" text = "rcpt452" class = "rate-limit" action = "throttle 1/h for 1h" }'
# The first message: one recipient gets "452 4.2.2 ... rcpt452", the
# other is accepted; yahoo has no rate of its own.
printf 'From: a@src.example\nX-Test-Id: thfirst\n\nfirst\n' |
    assert_exit 0 "$SENDMAIL" -i -O Lane=bulk r452-x@yahoo.com ok@yahoo.com
assert_exit 0 "$QUEUERUN" run
assert_eq 1 "$(sinkq "len(tid('thfirst'))")" "the first message arrived (for its other recipient)"
assert_match "$(grep -F 'throttled to 1/h' "$LOGFILE")" 'source 127\.0\.0\.14 throttled to 1/h for yahoo until .* by rule slow-rcpt: 452 4\.2\.2' \
    "log line of the throttle (a RCPT reply)"
queue_bs 3 news@src.example 's%d@yahoo.com' slow -O Lane=bulk
assert_exit 0 "$QUEUERUN" run
assert_eq 1 "$(sinkq "len(tids('slow-'))")" \
    "messages sent at the lowered rate of 1/h (one)"
assert_queue_count 3 "messages held back by the lowered rate (two) and the 452'd recipient's"
assert_eq "" "$(grep -F 'status=deferred' "$LOGFILE" | grep -v 'r452-x@yahoo.com')" \
    "deferrals other than the 452'd recipient (none: held, not deferred)"

# ---------------------------------------------------------------- config errors

section "reply rule errors: file:line, exit 78"
NAME=errs config "$TWO" 'reply "bad" { class = "spam-block" action = "suspend forever" }'
assert_exit 78 "$QUEUERUN" route a@yahoo.com
assert_match "$(last_err)" "$CONF:[0-9]+: reply bad: action \"suspend forever\"" "bad action: file:line"
NAME=errs2 config "$TWO" 'reply "bad" { class = "spam-block" action = "suspend 1h" after = "three in 10m" }'
assert_exit 78 "$QUEUERUN" route a@yahoo.com
assert_match "$(last_err)" "$CONF:[0-9]+: reply bad: after \"three in 10m\"" "bad after: file:line"

finish
