#!/bin/bash
# NAME
#	stats_metrics.sh - counters, status, metrics, report, the Grafana
#	dashboard and the Nagios plugin, checked against what a sink got
# DESCRIPTION
#	A sink plays yahoo.com's MX (127.0.0.172; gone@ gets 550 5.1.1,
#	full@ 452 4.2.2) and the senders' MX (127.0.0.173, the bounces);
#	the pool of yahoo has two sources, 127.0.0.174 and 127.0.0.175.
#	21 messages (23 recipients) go through real runner passes. Asserts:
#	  - status --json before: 21 messages, 23 recipients due, by lane
#	    and provider;
#	  - after the passes, stats' sent equals the recipients the sink
#	    accepted, in total, per provider and per source address (the
#	    sink's peer address); the bounce counted with its class
#	    (bad-mailbox), the deferral once per attempt; received;
#	  - a suppressed recipient counted as suppressed, not bounced;
#	  - queuerun metrics parsed by python3-prometheus-client's parser
#	    agrees with stats and status (sent, bounced by class, deferred,
#	    the histogram's count, the queue by state, the oldest age);
#	    metrics_textfile written by each pass, 0644, parsed too;
#	  - report lists the deferral and bounce reasons;
#	  - contrib/grafana/mxlane.json is valid JSON and its queries use
#	    only metric names queuerun metrics prints;
#	  - contrib/check_mxlane exits 0, 1, 2 and 3 as thresholds say.
#	Takes about 15 seconds.
# SEE ALSO
#	replies_suppress.sh, shaping_warmup.sh, tests/unit/test_stats.c
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SENDMAIL" "$QUEUERUN" "$MXL_SRC/contrib/check_mxlane" \
    "$MXL_SRC/contrib/grafana/mxlane.json"
"$PYTHON" -c 'import prometheus_client.parser' ||
    fail "python3-prometheus-client is missing (tests/install-deps.sh)"
RULES=$MXL_SRC/conf/replies.conf
MX=127.0.0.172
MX_SRC=127.0.0.173
S1=127.0.0.174
S2=127.0.0.175
MX_STALL=127.0.0.176	# never greets: sessions stay in flight

cat >"$SRV/zone" <<EOF
yahoo.com	MX 1 mta5.am0.yahoodns.net
mta5.am0.yahoodns.net	A $MX
src.example	MX 10 mx.src.example
mx.src.example	A $MX_SRC
slow1.example	MX 10 mx.slow.example
slow2.example	MX 10 mx.slow.example
mx.slow.example	A $MX_STALL
EOF
start_dns "$SRV/zone"
{
	printf 'gone\t550 5.1.1 <gone@yahoo.com>: Recipient address rejected: User unknown\n'
	printf 'full\t452 4.2.2 <full@yahoo.com>: Mailbox full\n'
} >"$SRV/replies"
start_sink sink --listen $MX:@P@ --listen $MX_SRC:@P@ \
    --listen "$MX_STALL:@P@=stallgreet" --rcpt-replies "$SRV/replies"

setup main "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $PORT" \
    'minimal_backoff_time = "1h"' 'maximal_backoff_time = "2h"' \
    "include(\"$RULES\")" \
    "pool yp { source \"$S1\" { } source \"$S2\" { } }" \
    'provider yahoo { domains = { "yahoo.com" } pool = "yp" }' \
    "metrics_textfile = \"$T/main.prom\""

# A Python expression over the JSON on standard input (J).
js() { "$PYTHON" -c 'import json, sys; J = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
qj() { timeout -k 5 "$CMD_TIMEOUT" "$QUEUERUN" "$@"; }
# A Python expression over a parsed exposition file: v(name, **labels)
# is the sum of the matching samples.
PROM='
import sys
from prometheus_client.parser import text_string_to_metric_families
F = {}
for fam in text_string_to_metric_families(open(sys.argv[2]).read()):
    for s in fam.samples:
        F.setdefault(s.name, []).append(s)
def v(name, **labels):
    return int(sum(s.value for s in F.get(name, [])
               if all(s.labels.get(k) == x for k, x in labels.items())))
print(eval(sys.argv[1]))'
pm() { "$PYTHON" -c "$PROM" "$1" "$2"; }

section "status before delivery"
queue_bs 20 news@src.example 'u%d@yahoo.com' s -O Lane=bulk
submit_file "$(message_file mixed)" -f alice@src.example -O Lane=bulk -i \
    gone@yahoo.com full@yahoo.com ok@yahoo.com
assert_exit 0 "$QUEUERUN" pickup
qj status --json >"$SRV/st0.json"
assert_eq 21 "$(js 'J["messages"]' <"$SRV/st0.json")" "status: messages"
assert_eq 23 "$(js 'J["recipients"]' <"$SRV/st0.json")" "status: recipients"
assert_eq 23 "$(js 'J["states"]["due"]["recipients"]' <"$SRV/st0.json")" "status: due recipients"
assert_eq 0 "$(js 'J["states"]["held"]["recipients"]' <"$SRV/st0.json")" "status: held recipients"
assert_eq "bulk 21 23" "$(js '" ".join(str(x) for l in J["lanes"] for x in (l["lane"], l["due"]["messages"], l["due"]["recipients"]))' <"$SRV/st0.json")" \
    "status: the lane's row"
assert_eq "- 21 23" "$(js '" ".join(str(x) for p in J["sources"] for x in (p["source"], p["due"]["messages"], p["due"]["recipients"]))' <"$SRV/st0.json")" \
    "status: no source yet before the first attempt"
assert_eq "yahoo 23" "$(js '" ".join(str(x) for p in J["providers"] for x in (p["provider"], p["due"]["recipients"]))' <"$SRV/st0.json")" \
    "status: the provider's row"
assert_eq 1 "$(js 'int(J["oldest_age_seconds"] >= 0 and J["oldest_queue_id"] is not None)' <"$SRV/st0.json")" "status: the oldest message"

section "counters equal what the sink accepted"
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run
assert_queue_count 1 "left in the queue (full@ deferred)"
sink_rcpts=$(sinkq "sum(len(m['rcpt_tos']) for m in M)")
assert_eq 21 "$(sinkq "sum(len(m['rcpt_tos']) for m in at('$MX'))")" "recipients the yahoo MX accepted"
assert_eq 1 "$(sinkq "len(at('$MX_SRC'))")" "bounces at the sender's MX"
qj stats --json --since 1d >"$SRV/all.json"
assert_eq "$sink_rcpts" "$(js 'J["total"]["sent"]' <"$SRV/all.json")" "stats: sent = recipients accepted by the sink"
assert_eq 1 "$(js 'J["total"]["deferred"]' <"$SRV/all.json")" "stats: deferred"
assert_eq 1 "$(js 'J["total"]["bounced"]' <"$SRV/all.json")" "stats: bounced"
assert_eq "{'bad-mailbox': 1}" "$(js 'J["total"]["bounced_by_class"]' <"$SRV/all.json")" "stats: bounced by class"
assert_eq "$(js 'J["total"]["sent"] + 2' <"$SRV/all.json")" "$(js 'J["total"]["total"]' <"$SRV/all.json")" "stats: total = sent + bounced + deferred"
assert_eq 22 "$(js 'J["total"]["received"]' <"$SRV/all.json")" \
    "stats: received = 21 submitted + 1 bounce notice"
assert_eq "21 1 1" "$(js '" ".join(str(r[k]) for r in J["rows"] if r["provider"] == "yahoo" for k in ("sent", "bounced", "deferred"))' <"$SRV/all.json")" \
    "stats: yahoo's sent, bounced, deferred"
qj stats --json --by source >"$SRV/src.json"
for s in $S1 $S2; do
	assert_eq "$(sinkq "sum(len(m['rcpt_tos']) for m in at('$MX') if m['peer_ip'] == '$s')")" \
	    "$(js "sum(r['sent'] for r in J['rows'] if r['source'] == '$s')" <"$SRV/src.json")" \
	    "stats by source: $s sent what the sink got from it"
done
qj stats --json --by lane >"$SRV/lane.json"
assert_eq "22 24" "$(js '" ".join(str(r[k]) for r in J["rows"] if r["lane"] == "bulk" for k in ("received", "received_recipients"))' <"$SRV/lane.json")" \
    "stats by lane: received messages and recipients (the bounce is queued in the message's lane)"
assert_exit 0 "$QUEUERUN" stats --by pool
assert_match "$(last_out)" '^yp +0 +23 +21 +1 +1 +0$' "stats table: the pool's row"
assert_match "$(last_out)" '^  bad-mailbox +1$' "stats table: bounces by class"
assert_exit 64 "$QUEUERUN" stats --since yesterday
assert_exit 64 "$QUEUERUN" stats --by domain

section "a suppressed recipient counts as suppressed"
submit_file "$(message_file again)" -f alice@src.example -O Lane=bulk -i gone@yahoo.com
assert_exit 0 "$QUEUERUN" run
qj stats --json >"$SRV/sup.json"
assert_eq "1 1" "$(js '"%d %d" % (J["total"]["suppressed"], J["total"]["bounced"])' <"$SRV/sup.json")" \
    "stats: suppressed 1, bounced still 1"
assert_eq 1 "$(js 'sum(r["suppressed"] for r in J["rows"] if r["provider"] == "yahoo")' <"$SRV/sup.json")" \
    "stats: the suppressed recipient under its domain's provider"

section "metrics agree with stats and status"
qj metrics >"$SRV/metrics.txt"
assert_eq 0 "$?" "queuerun metrics exit status"
qj stats --json >"$SRV/now.json"
qj status --json >"$SRV/st1.json"
sent=$(js 'J["total"]["sent"]' <"$SRV/now.json")
assert_eq "$sent" "$(pm 'v("mxlane_messages_sent_total")' "$SRV/metrics.txt")" "metrics: sent"
assert_eq "$(sinkq "sum(len(m['rcpt_tos']) for m in M)")" "$sent" "sent still = the sink's recipients"
assert_eq 21 "$(pm 'v("mxlane_messages_sent_total", provider="yahoo")' "$SRV/metrics.txt")" "metrics: yahoo sent"
assert_eq 1 "$(pm 'v("mxlane_messages_bounced_total", provider="yahoo", **{"class": "bad-mailbox"})' "$SRV/metrics.txt")" \
    "metrics: bounced by class"
assert_eq 1 "$(pm 'v("mxlane_messages_deferred_total")' "$SRV/metrics.txt")" "metrics: deferred"
assert_eq 1 "$(pm 'v("mxlane_messages_suppressed_total", lane="bulk")' "$SRV/metrics.txt")" "metrics: suppressed"
assert_eq "$sent" "$(pm 'v("mxlane_delivery_seconds_count")' "$SRV/metrics.txt")" "metrics: the histogram counts every recipient sent"
assert_eq "$sent" "$(pm 'v("mxlane_delivery_seconds_bucket", le="+Inf")' "$SRV/metrics.txt")" "metrics: +Inf bucket"
assert_eq "$(js 'J["states"]["deferred"]["recipients"]' <"$SRV/st1.json")" \
    "$(pm 'v("mxlane_queue_recipients", state="deferred")' "$SRV/metrics.txt")" "metrics and status: deferred recipients"
assert_eq 1 "$(pm 'v("mxlane_queue_recipients", state="deferred", lane="bulk", provider="yahoo")' "$SRV/metrics.txt")" \
    "metrics: full@ deferred in bulk, yahoo"
# The deferred one waits tied to the source its attempt left from.
assert_eq "1 $(sinkq "sorted(set(r['peer_ip'] for r in R if 'full@yahoo.com' in str(r) and r.get('peer_ip')))")" \
    "$(js '" ".join(str(x) for p in J["sources"] if p["deferred"]["recipients"] for x in (p["deferred"]["recipients"], [p["source"]]))' <"$SRV/st1.json")" \
    "status: the deferred recipient under the source of its attempt"
age=$(pm 'v("mxlane_oldest_message_age_seconds")' "$SRV/metrics.txt")
assert_eq 1 "$(js "int(abs(J['oldest_age_seconds'] - $age) <= 2)" <"$SRV/st1.json")" "metrics and status: the oldest age"
assert_true "[ -f \"$T/main.prom\" ]" "metrics_textfile written by the pass"
assert_eq 644 "$(stat -c %a "$T/main.prom")" "metrics_textfile mode"
assert_eq "$sent" "$(pm 'v("mxlane_messages_sent_total")' "$T/main.prom")" "metrics_textfile: sent, written by the pass"
assert_eq "" "$(ls "$T" | grep '\.tmp$')" "no temporary file left"

section "the daemon writes metrics_textfile too"
rm -f "$T/main.prom"
"$QUEUERUN" run --daemon 1h >"$SRV/daemon.out" 2>&1 &
D=$!
track_pid "$D"
if wait_for 30 test -f "$T/main.prom"; then pass; else fail "the daemon wrote no metrics_textfile in 30 s"; fi
kill -TERM "$D" 2>/dev/null
wait "$D"
assert_eq 0 "$?" "daemon exit status after SIGTERM"
assert_eq "$sent" "$(pm 'v("mxlane_messages_sent_total")' "$T/main.prom")" "the daemon's metrics_textfile: sent"

section "report"
assert_exit 0 "$QUEUERUN" report --since 24h
R=$(last_out)
assert_match "$(printf '%s\n' "$R" | sed -n '/^Top deferral reasons/,/^$/p')" '^ +1 +yahoo +.*452 4\.2\.2 <>: Mailbox full' "report: the deferral reason"
assert_match "$(printf '%s\n' "$R" | sed -n '/^Top bounce reasons/,$p')" '^ +1 +yahoo +.*550 5\.1\.1 <>: Recipient address rejected: User unknown' "report: the bounce reason"
assert_match "$R" "^ +$sent +delivered\$" "report: delivered"

section "the Grafana dashboard uses only metrics mxlane prints"
"$PYTHON" - "$MXL_SRC/contrib/grafana/mxlane.json" "$SRV/metrics.txt" >"$SRV/dash.out" 2>&1 <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
text = open(sys.argv[2]).read()
# Samples, and every family declared (a gauge with nothing in force,
# such as warm-up on a host with no warming source, has no sample).
emitted = set(re.findall(r"^(mxlane_[a-z_]+)", text, re.M))
for name, kind in re.findall(r"^# TYPE (mxlane_[a-z_]+) (\w+)", text, re.M):
    emitted.add(name)
    if kind == "histogram":
        emitted.update(name + x for x in ("_bucket", "_sum", "_count"))
exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
exprs += [v.get("query", "") for v in d["templating"]["list"] if v["type"] == "query"]
used = set(n for e in exprs for n in re.findall(r"\bmxlane_[a-z_]+", e))
print(len(d["panels"]), len(used), sorted(used - emitted))
PY
assert_eq 0 "$?" "dashboard: valid JSON"
assert_match "$(cat "$SRV/dash.out")" '^[0-9]+ [0-9]+ \[\]$' "dashboard: every metric name is one queuerun metrics prints"

section "check_mxlane"
CHK="$MXL_SRC/contrib/check_mxlane"
CMDLINE="$QUEUERUN status --json"
assert_exit 0 "$PYTHON" "$CHK" --command "$CMDLINE" -w 5 -c 10 -W 1h -C 2h
assert_match "$(last_out)" '^MXLANE OK - 1 messages in the queue, oldest [0-9]+ s \| messages=1;5;10;0 ' "OK line and perfdata"
assert_exit 1 "$PYTHON" "$CHK" --command "$CMDLINE" -w 1 -c 10
assert_match "$(last_out)" '^MXLANE WARNING - .*messages 1 >= 1' "WARNING on queue size"
assert_exit 2 "$PYTHON" "$CHK" --command "$CMDLINE" -w 1 -c 1
assert_match "$(last_out)" '^MXLANE CRITICAL - ' "CRITICAL line"
assert_exit 2 "$PYTHON" "$CHK" --command "$CMDLINE" -C 1s -w 100
assert_exit 1 "$PYTHON" "$CHK" --command "$CMDLINE" -W 1s -w 100
assert_exit 3 "$PYTHON" "$CHK" --command "false"
assert_exit 3 "$PYTHON" "$CHK" --command "echo not-json"
assert_exit 3 "$PYTHON" "$CHK" -w many

section "runners and SMTP sessions in flight"
# Two messages for a server that never greets: the daemon's sessions
# stay open, and status must count what the sink sees connected.
for d in slow1 slow2; do
	printf 'Subject: slow\n\nx\n' | "$SENDMAIL" -odq -f news@src.example \
	    -O Lane=bulk "u@$d.example" || fail "submission to $d.example"
done
sink_sessions() { js 'J["sessions_active"]' <"$SINK_STATS"; }
status_sessions() { qj status --json | js 'J["sessions"]'; }
"$QUEUERUN" run --daemon 1h >"$SRV/daemon2.out" 2>&1 &
D=$!
track_pid "$D"
if wait_for 30 eval '[ "$(sink_sessions)" -ge 1 ] && [ "$(status_sessions)" = "$(sink_sessions)" ]'; then
	pass
else
	fail "status counts $(status_sessions) sessions in flight, the sink holds $(sink_sessions)"
fi
qj status --json >"$SRV/st2.json"
assert_eq "1 daemon $D" "$(js '"%d %s %d" % (len(J["runners"]), J["runners"][0]["kind"], J["runners"][0]["pid"])' <"$SRV/st2.json")" \
    "status: the daemon listed, by pid"
qj metrics >"$SRV/metrics2.txt"
assert_eq "1 $(js 'J["sessions"]' <"$SRV/st2.json")" \
    "$(pm '"%d %d" % (v("mxlane_runners", kind="daemon"), v("mxlane_smtp_sessions"))' "$SRV/metrics2.txt")" \
    "metrics: one daemon, the sessions status counts"
assert_exit 0 "$QUEUERUN" status
assert_match "$(last_out)" "^  pid $D \\(daemon, up [^)]*\\): [1-9][0-9]* sessions? " "status: the runner's line"
# Killed outright, a runner leaves its file behind: not listed, removed.
kill -KILL "$D"
wait "$D" 2>/dev/null
assert_eq "0 0" "$(qj status --json | js '"%d %d" % (len(J["runners"]), J["sessions"])')" \
    "status after the daemon was killed: no runner, no session"
assert_eq "" "$(ls "$SPOOL/runners" 2>&1)" "the dead runner's file removed by status"

finish
