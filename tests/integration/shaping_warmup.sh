#!/bin/bash
# NAME
#	shaping_warmup.sh - IP warm-up: a source's daily cap per provider
# DESCRIPTION
#	A sink plays yahoo's MX. Asserts:
#	  - a two-source pool whose 127.0.0.11 warms up ("TODAY: 20/d,
#	    40/d") and 127.0.0.12 is warm: of 60 messages to yahoo.com in one
#	    pass, exactly 20 leave from 127.0.0.11 and 40 from 127.0.0.12,
#	    none lost or twice; the log says when the cap is reached; route
#	    shows "day 1 of 2, cap 20/d for yahoo, sent today 20" and names
#	    127.0.0.12 as the next source;
#	  - a one-source pool whose 127.0.0.21 warms up: of 30 messages, 20
#	    go, 10 wait in the queue with no attempt counted and no
#	    connection; route says none is ready and why. The next day is
#	    simulated by moving the start date back one day (the counts are
#	    kept per day index): a flush pass then sends the 10 from
#	    127.0.0.21, and route shows day 2, cap 40, sent today 10;
#	  - a schedule that is over (start 3 days back, 2 steps) is warm:
#	    route says so and there is no cap;
#	  - malformed schedules are refused with file:line, exit 78.
#	Takes about 15 seconds.
# SEE ALSO
#	shaping_reactions.sh, routing_sources.sh
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN"

MX=127.0.0.40
cat >"$SRV/zone" <<EOF
yahoo.com			MX 1 mta5.am0.yahoodns.net
mta5.am0.yahoodns.net		A $MX
EOF
start_dns "$SRV/zone"
start_sink sink --listen $MX:@P@ --max-lifetime 600
TODAY=$(date -u +%F)
YESTERDAY=$(date -u -d yesterday +%F)
LONG_AGO=$(date -u -d '3 days ago' +%F)

# config NAME POOL-SOURCES
config() {
	setup "$1" "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
	    "pool yahoo { $2 }" \
	    'provider yahoo { domains = { "yahoo.com" } pool = "yahoo" messages_per_connection = 7 }'
}

# ---------------------------------------------------------------- two sources

section "two sources, one warming with a cap of 20 today"
config two "source \"127.0.0.11\" { warmup = \"$TODAY: 20/d, 40/d\" } source \"127.0.0.12\" { }"
queue_bs 60 news@src.example 'u%d@yahoo.com' two -O Lane=bulk
assert_exit 0 "$QUEUERUN" route --lane bulk u0@yahoo.com
assert_match "$(last_out)" "^  warmup: source 127\.0\.0\.11 day 1 of 2, cap 20/d for yahoo, sent today 0\$" \
    "route before: the day, the cap and today's count"
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "queue after one pass"
assert_eq 60 "$(sinkq "len(set(m['x_test_id'] for m in tids('two-')))")" "distinct messages arrived"
assert_eq 60 "$(sinkq "len(tids('two-'))")" "messages arrived (none twice)"
assert_eq 20 "$(sinkq "len([m for m in tids('two-') if m['peer_ip'] == '127.0.0.11'])")" \
    "messages from the warming 127.0.0.11 (its cap)"
assert_eq 40 "$(sinkq "len([m for m in tids('two-') if m['peer_ip'] == '127.0.0.12'])")" \
    "messages from 127.0.0.12 (the rest)"
assert_match "$(grep -F 'cap of 20' "$LOGFILE" | head -1)" \
    "shaping.*: source 127\.0\.0\.11 warming up: day 1's cap of 20 for yahoo reached" "log: the cap reached"
assert_exit 0 "$QUEUERUN" route --lane bulk u0@yahoo.com
R=$(last_out)
assert_match "$R" "^  warmup: source 127\.0\.0\.11 day 1 of 2, cap 20/d for yahoo, sent today 20 \(cap reached" \
    "route after: today's count at the cap"
assert_eq 127.0.0.12 "$(route_field "$R" source | cut -d' ' -f1)" "route: the next source is the warm one"

# ---------------------------------------------------------------- one source

section "one warming source: the rest waits for the next day"
config one "source \"127.0.0.21\" { warmup = \"$TODAY: 20/d, 40/d\" }"
queue_bs 30 news@src.example 'v%d@yahoo.com' one -O Lane=bulk
assert_exit 0 "$QUEUERUN" run
assert_eq 20 "$(sinkq "len(tids('one-'))")" "messages sent on day 1"
assert_queue_count 10 "messages waiting for the next day"
sessions=$(sinkq "len([s for s in S if s['peer_ip'] == '127.0.0.21'])")
assert_exit 0 "$QUEUERUN" run --flush
assert_eq 20 "$(sinkq "len(tids('one-'))")" "messages sent by a second pass on day 1"
assert_eq "$sessions" "$(sinkq "len([s for s in S if s['peer_ip'] == '127.0.0.21'])")" \
    "connections of the second pass on day 1 (none)"
assert_queue_count 10 "messages still waiting"
id=$(queue_ids | head -1)
assert_eq "0" "$(show "$id" | sed -n 's/^  attempts: //p' | sort -u | tr '\n' ' ' | sed 's/ $//')" \
    "attempts counted for the waiting mail"
assert_eq "" "$(grep -F 'status=deferred' "$LOGFILE")" "deferrals (none: the mail is held, not deferred)"
assert_exit 0 "$QUEUERUN" route --lane bulk v0@yahoo.com
assert_match "$(route_field "$(last_out)" source)" \
    "^none ready: mail for yahoo waits \(source 127\.0\.0\.21 warming up: day 1's cap of 20 for yahoo reached\)\$" \
    "route: why nothing goes"
# The next day: the schedule started a day earlier.
sed -i "s/$TODAY: 20/$YESTERDAY: 20/" "$CONF"
assert_exit 0 "$QUEUERUN" route --lane bulk v0@yahoo.com
assert_match "$(last_out)" "^  warmup: source 127\.0\.0\.21 day 2 of 2, cap 40/d for yahoo, sent today 0\$" \
    "route on day 2 before the pass"
assert_exit 0 "$QUEUERUN" run --flush
assert_queue_empty "queue after the pass of day 2"
assert_eq 30 "$(sinkq "len(set(m['x_test_id'] for m in tids('one-')))")" "distinct messages arrived in all"
assert_eq "['127.0.0.21']" "$(sinkq "sorted(set(m['peer_ip'] for m in tids('one-')))")" "their source"
assert_exit 0 "$QUEUERUN" route --lane bulk v0@yahoo.com
assert_match "$(last_out)" "^  warmup: source 127\.0\.0\.21 day 2 of 2, cap 40/d for yahoo, sent today 10\$" \
    "route on day 2 after the pass"

# ---------------------------------------------------------------- warm

section "after the last step the source is warm"
config warm "source \"127.0.0.21\" { warmup = \"$LONG_AGO: 1/d, 1/d\" }"
assert_exit 0 "$QUEUERUN" route --lane bulk v0@yahoo.com
assert_match "$(last_out)" "^  warmup: source 127\.0\.0\.21 warm \(schedule of 2 days done\)\$" "route: warm"
queue_bs 5 news@src.example 'w%d@yahoo.com' warm -O Lane=bulk
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "a warm source has no cap"

# ---------------------------------------------------------------- errors

section "malformed schedules: file:line, exit 78"
for bad in "2026-13-01: 20/d" "$TODAY 20/d" "$TODAY: 20/h" "$TODAY: " "$TODAY: 20/d, x"; do
	config errs "source \"127.0.0.11\" {
  warmup = \"$bad\"
}"
	line=$(grep -n 'warmup =' "$CONF" | cut -d: -f1)
	assert_exit 78 "$QUEUERUN" route a@yahoo.com
	assert_match "$(last_err)" "$CONF:$line: source \"127\.0\.0\.11\": warmup = " "warmup \"$bad\": file:line"
	assert_exit 78 "$SENDMAIL" -bv a@yahoo.com
done

finish
