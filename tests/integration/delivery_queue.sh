#!/bin/bash
# NAME
#	delivery_queue.sh - finding the MX, retries, lanes, runners, signals, logs
# DESCRIPTION
#	One DNS server (tests/servers/dnsserver.py, its zone rewritten by
#	rename where a case needs DNS to change) and one test MX
#	(tests/servers/smtpsink.py) with listeners on 127.0.0.150-156 and a
#	random high port (smtp_port). Each part has its own spool and log
#	(lib.sh's setup); bounces go to src.example, whose MX keeps them, and
#	are parsed with dsncheck.py. Asserts:
#	  - DNS: the lower MX preference is tried first (three passes, the
#	    zone lists the higher one first); no MX -> the A record; null MX
#	    -> bounced at once, dsn 5.1.10, DSN; NXDOMAIN -> bounced, 5.1.2,
#	    DSN; SERVFAIL -> deferred 4.4.3, not retried by a plain pass before
#	    its time, then delivered by `queuerun run --flush` once the zone
#	    is fixed;
#	  - retries: with minimal_backoff_time 1s and maximal_backoff_time 4s
#	    an always-450 recipient is tried again only when due, attempts
#	    count 1, 2, 3, 4 and next_try is the attempt's time + 1, 2, 4, 4 s;
#	    delay_warning_time 3s gives exactly one delay DSN (action
#	    delayed); maximal_queue_lifetime 9s then bounces it with a
#	    failure DSN and removes the message;
#	  - a priority message is delivered with no daemon: the sink has it
#	    within 10 s, and sendmail returned before a slow MX even accepted
#	    it (latencies printed); bulk mail waits for `sendmail -q`;
#	  - a daemon (`queuerun run --daemon 1h`) delivers new bulk mail at
#	    once (its own pid in the log), twice;
#	  - `sendmail -qI<id>`, `-qR<domain>`, `-qS<sender>` deliver exactly
#	    the matching messages;
#	  - `queuerun run --max-time 2` stops a pass over slow deliveries in
#	    time, leaves the rest queued (not active), a later pass delivers
#	    them, each exactly once;
#	  - SIGTERM to a daemon in the middle of a slow delivery: exit 0
#	    within 5 s, no recipient left active, the unfinished ones queued
#	    and delivered by the next plain pass;
#	  - a null-sender message that bounces makes no bounce and no loop
#	    without a postmaster alias; with one, the notice goes to what
#	    the alias expands to, and a notice that bounces is discarded;
#	  - pflogsumm --syslog-name=mxlane over one part's log reports the
#	    received, delivered, deferred and bounced counts that happened.
#	Every `queuerun run --flush` runs under a 30 s limit. Takes about
#	60 seconds.
# SEE ALSO
#	delivery_faults.sh, tests/servers/smtpsink.py, tests/servers/dnsserver.py
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/smtpsink.py" "$SERVERS/dnsserver.py" \
    "$SERVERS/dsncheck.py" "$SENDMAIL" "$QUEUERUN"
need_cmd pflogsumm

# ---------------------------------------------------------------- helpers

# next_try_unix ID ADDR: a recipient's next_try as a Unix time
next_try_unix() { date -d "$(rcpt_get "$1" "$2" next_try)" +%s; }

# no_active: no recipient of any queued message is active
no_active() {
	local i n=0
	for i in $(queue_ids); do
		n=$((n + $(show "$i" | grep -c '^  state: active')))
	done
	assert_eq 0 "$n" "${1:-recipients} in state active"
}

# flush SECONDS: queuerun run --flush under a time limit
flush() {
	local limit=$1
	shift
	assert_exit 0 timeout -k 5 "$limit" "$QUEUERUN" run --flush "$@"
}

# ---------------------------------------------------------------- servers

IP_BOUNCE=127.0.0.150	# MX of src.example: keeps the bounces
IP_MXA=127.0.0.151	# preference 10
IP_MXB=127.0.0.152	# preference 20
IP_AONLY=127.0.0.153	# A record, no MX
IP_OK=127.0.0.154	# plain MX of most test domains
IP_SLOW=127.0.0.155	# 700 ms before every reply
IP_SLOWISH=127.0.0.156	# 250 ms before every reply

SF_FIXED=0		# sf.test: SERVFAIL until fixed
TERM_IP=$IP_SLOW	# term.test: slow until switched
write_zone() {
	{
		echo "src.example MX 10 mx.src.example"
		echo "mx.src.example A $IP_BOUNCE"
		echo "pref.test MX 20 mxb.pref.test"
		echo "pref.test MX 10 mxa.pref.test"
		echo "mxb.pref.test A $IP_MXB"
		echo "mxa.pref.test A $IP_MXA"
		echo "a-only.test A $IP_AONLY"
		echo "nullmx.test MX 0 ."
		echo "mx.ok.test A $IP_OK"
		echo "mx.slow.test A $IP_SLOW"
		echo "mx.slowish.test A $IP_SLOWISH"
		local d
		for d in ok.test sel1.test sel2.test sel3.test; do
			echo "$d MX 10 mx.ok.test"
		done
		for d in 1 2 3 4; do
			echo "mt$d.test MX 10 mx.slowish.test"
		done
		echo "slowish.test MX 10 mx.slowish.test"
		if [ "$SF_FIXED" = 1 ]; then
			echo "sf.test MX 10 mx.ok.test"
		else
			echo "sf.test SERVFAIL"
		fi
		echo "term.test MX 10 mx.term.test"
		echo "mx.term.test A $TERM_IP"
	} >"$SRV/zone.new"
	mv "$SRV/zone.new" "$SRV/zone"
}

section "start a DNS server and the test MX"
write_zone
start_dns "$SRV/zone"
start_sink sink \
    --listen $IP_BOUNCE:@P@ --listen $IP_MXA:@P@ --listen $IP_MXB:@P@ \
    --listen $IP_AONLY:@P@ --listen $IP_OK:@P@ \
    --listen $IP_SLOW:@P@=delay700 --listen $IP_SLOWISH:@P@=delay250 \
    --save-dir "$SRV/saved" --stall-seconds 30
P=$PORT
say "sink on port $P, DNS on 127.0.0.1:$DNS_PORT"

# world NAME [CONFIG-LINE...]: a fresh spool and log using these servers
world() {
	local name=$1
	shift
	setup "$name" \
	    "resolver = \"127.0.0.1:$DNS_PORT\"" \
	    "smtp_port = $P" \
	    "queuerun_path = \"$QUEUERUN\"" \
	    "$@"
}
S=(-i -f alice@src.example)

# ---------------------------------------------------------------- DNS

section "MX preference: the lower preference first"
world dns "immediate_delivery = false"
for i in 1 2 3; do
	submit_file "$(message_file pref$i)" "${S[@]}" p$i@pref.test
	id=$NEWID
	assert_exit 0 "$QUEUERUN" run
	check_log "$id" p$i@pref.test sent '2\.0\.0' "relay=mxa.pref.test[$IP_MXA]:$P"
	check_gone "$id"
done
assert_eq "3 0" "$(sinkq 'str(len(at("'$IP_MXA'"))) + " " + str(len(at("'$IP_MXB'")))')" \
    "messages on the preference 10 and preference 20 hosts"

section "no MX: the A record is the host"
submit_file "$(message_file aonly)" "${S[@]}" x@a-only.test;	ID_AONLY=$NEWID
submit_file "$(message_file nullmx)" "${S[@]}" x@nullmx.test;	ID_NULL=$NEWID
submit_file "$(message_file nx)" "${S[@]}" x@nx.test;		ID_NX=$NEWID
submit_file "$(message_file sf)" "${S[@]}" x@sf.test;		ID_SF=$NEWID
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run		# delivers the bounces
check_log "$ID_AONLY" x@a-only.test sent '2\.0\.0' "relay=a-only.test[$IP_AONLY]:$P"
check_gone "$ID_AONLY"
assert_eq 1 "$(sinkq 'len([m for m in tid("aonly") if m["listener"].startswith("'$IP_AONLY':")])')" \
    "message on the A record's address"

dsn_table
assert_eq 0 "$(grep -c '^INVALID' "$SRV/dsn.tsv")" "DSNs dsncheck.py rejects"

section "null MX: bounced at once"
check_log "$ID_NULL" x@nullmx.test bounced '5\.1\.10' "nullmx.test"
check_gone "$ID_NULL"
check_dsn "$ID_NULL" failed x@nullmx.test failed '^5\.1\.10$' ""

section "NXDOMAIN: bounced at once"
check_log "$ID_NX" x@nx.test bounced '5\.1\.2' "nx.test"
check_gone "$ID_NX"
check_dsn "$ID_NX" failed x@nx.test failed '^5\.1\.2$' ""

section "SERVFAIL: deferred, then delivered once DNS is fixed"
check_log "$ID_SF" x@sf.test deferred '4\.4\.3' "sf.test"
check_rcpt "$ID_SF" x@sf.test queued 1
assert_eq 0 "$(dsn_rows "$ID_SF" | grep -c .)" "DSNs about the SERVFAIL message"
assert_exit 0 "$QUEUERUN" run
check_rcpt "$ID_SF" x@sf.test queued 1		# not due for 5 minutes
# --flush ignores next_try: one more attempt, deferred again, and the pass
# ends (it must not keep retrying what it has just deferred).
flush 10
check_rcpt "$ID_SF" x@sf.test queued 2
SF_FIXED=1
write_zone
flush 30
check_log "$ID_SF" x@sf.test sent '2\.0\.0' "relay=mx.ok.test[$IP_OK]:$P" 3
check_gone "$ID_SF"
assert_eq 1 "$(sinkq 'len(tid("sf"))')" "SERVFAIL message delivered once"
assert_queue_empty "dns world at the end"

# ---------------------------------------------------------------- retries

section "backoff, one delay notice, expiry after maximal_queue_lifetime"
world retry "immediate_delivery = false" \
    "minimal_backoff_time = \"1s\"" "maximal_backoff_time = \"4s\"" \
    "delay_warning_time = \"3s\"" "maximal_queue_lifetime = \"9s\""
submit_file "$(message_file retry)" "${S[@]}" r450-retry@ok.test
ID_R=$NEWID
R=r450-retry@ok.test
arrival=$(env_get "$ID_R" arrival_unix)
# attempt K: wait until due, one plain pass, then attempts = K and
# next_try = the pass's second + min(1 * 2^(K-1), 4)
for k in 1 2 3 4; do
	if [ "$k" -gt 1 ]; then
		due=$(next_try_unix "$ID_R" "$R")
		# a pass before the time changes nothing
		if [ "$(date +%s)" -lt "$((due - 1))" ]; then
			assert_exit 0 "$QUEUERUN" run
			if [ "$(date +%s)" -lt "$due" ]; then
				assert_eq "$((k - 1))" "$(rcpt_get "$ID_R" "$R" attempts)" \
				    "attempts after a pass before next_try"
			fi
		fi
		wait_for 10 sh -c "[ \$(date +%s) -ge $due ]" || fail "next_try $due never came"
	fi
	b0=$(date +%s)
	assert_exit 0 "$QUEUERUN" run
	b1=$(date +%s)
	check_rcpt "$ID_R" "$R" queued "$k"
	backoff=$((1 << (k - 1)))
	[ "$backoff" -le 4 ] || backoff=4
	nt=$(next_try_unix "$ID_R" "$R")
	say "attempt $k at $((b0 - arrival))-$((b1 - arrival)) s: next_try +$((nt - b0)) s (backoff $backoff s)"
	if [ "$nt" -ge "$((b0 + backoff))" ] && [ "$nt" -le "$((b1 + backoff))" ]; then
		pass
	else
		fail "next_try after attempt $k is not the attempt's time + $backoff s" \
		    "pass ran $b0..$b1, next_try $nt ($(rcpt_get "$ID_R" "$R" next_try))"
	fi
	check_log "$ID_R" "$R" deferred '4\.2\.1' "450 4.2.1" "$k"
done
due=$(next_try_unix "$ID_R" "$R")
wait_for 10 sh -c "[ \$(date +%s) -ge $due ] && [ \$(date +%s) -ge $((arrival + 9)) ]" ||
    fail "the message never became due after its lifetime"
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run		# delivers a bounce queued last
check_gone "$ID_R"
check_log "$ID_R" "$R" bounced '[45]\.[0-9]+\.[0-9]+' "450 4.2.1" 5
assert_eq 1 "$(grep -c ": $ID_R: sender delay notification: " "$LOGFILE")" "delay notification log lines"
assert_eq 1 "$(grep -c ": $ID_R: sender non-delivery notification: " "$LOGFILE")" "non-delivery notification log lines"
dsn_table
check_dsn "$ID_R" delayed "$R" delayed '^4\.2\.1$' "450 4.2.1"
check_dsn "$ID_R" failed "$R" failed '^[45]\.[0-9]+\.[0-9]+$' "450 4.2.1"
assert_eq 2 "$(dsn_rows "$ID_R" | grep -c .)" "DSNs about the expired message (one delay, one failure)"
assert_queue_empty "retry world at the end"

# ---------------------------------------------------------------- lanes

section "priority mail goes out at once without a daemon"
world prio "immediate_delivery = true"
for case in fast:ok.test slow:slowish.test; do
	name=${case%%:*}
	t0=$(now)
	assert_exit 0 "$SENDMAIL" "${S[@]}" "$name@${case#*:}" <"$(message_file prio-$name)"
	t1=$(now)
	if wait_for 10 sink_true 'len(tid("prio-'$name'")) == 1'; then
		pass
	else
		fail "priority message ($name MX) did not reach the sink within 10 s" \
		    "$(cat "$LOGFILE")"
		continue
	fi
	arrived=$(sinkq 'tid("prio-'$name'")[0]["time"]')
	say "$name MX: sendmail returned after $(pyc "round($t1 - $t0, 3)") s, the MX had the message $(pyc "round($arrived - $t0, 3)") s after submission"
	assert_eq 1 "$(pyc "int($t1 - $t0 < 10)")" "sendmail returned within 10 s"
	if [ "$name" = slow ]; then
		# Every reply of this MX takes 250 ms: sendmail must not wait.
		assert_eq 1 "$(pyc "int($t1 < $arrived)")" \
		    "sendmail returned ($t1) before the slow MX accepted the message ($arrived)"
	fi
done
wait_for 10 sh -c "[ -z \"\$(timeout 10 '$SENDMAIL' -bp | grep -E '^[0-9A-F]{13}')\" ]"
assert_queue_empty "priority messages removed once delivered"

section "bulk mail waits for a queue run"
submit_file "$(message_file bulk)" "${S[@]}" -O Lane=bulk bulk@ok.test
ID_BULK=$NEWID
assert_eq bulk "$(env_get "$ID_BULK" lane)" "lane of the bulk message"
sleep 1.5
assert_eq 0 "$(sinkq 'len(tid("bulk"))')" "bulk message at the sink before sendmail -q"
check_rcpt "$ID_BULK" bulk@ok.test queued 0
assert_exit 0 "$SENDMAIL" -q
assert_eq 1 "$(sinkq 'len(tid("bulk"))')" "bulk message at the sink after sendmail -q"
check_gone "$ID_BULK"

# ---------------------------------------------------------------- daemon

section "a daemon passes as soon as new mail arrives"
world daemon
"$QUEUERUN" run --daemon 1h >"$W/daemon.out" 2>&1 &
DPID=$!
track_pid "$DPID"
# Ready once it has logged its start (give it 2 s more if the wording
# ever changes); mail submitted before it listens would only wait.
wait_for 10 grep -q "daemon started" "$LOGFILE" || sleep 2
assert_eq 0 "$(kill -0 "$DPID" 2>/dev/null; echo $?)" "daemon running"
for i in 1 2; do
	t0=$(now)
	# The daemon may be done before mailq could list it: the id comes
	# from the submission's log line.
	assert_exit 0 "$SENDMAIL" "${S[@]}" -O Lane=bulk wake$i@ok.test <"$(message_file wake$i)"
	id=$(sed -n 's/.* mxlane\/pickup\[[0-9]*\]: \([0-9A-F]\{13\}\): uid=.*/\1/p' "$LOGFILE" | tail -1)
	assert_match "$id" '^[0-9A-F]{13}$' "queue id of wake$i"
	assert_eq "$i" "$(grep -c 'mxlane/pickup\[' "$LOGFILE")" "submissions logged in the daemon world"
	if wait_for 10 sink_true 'len(tid("wake'$i'")) == 1'; then pass; else
		fail "the daemon did not deliver new bulk mail within 10 s" "$(cat "$LOGFILE")"
	fi
	say "new mail $i delivered by the daemon $(pyc "round($(sinkq 'tid("wake'$i'")[0]["time"]') - $t0, 3)") s after submission"
	wait_for 5 grep -q ": $id: to=<wake$i@ok.test>" "$LOGFILE"
	check_log "$id" wake$i@ok.test sent '2\.0\.0' "250 2.0.0"
	# Its delivery workers log the delivery, the daemon the pass.
	wait_for 5 sh -c "[ \$(grep -c 'mxlane/queuerun\[$DPID\]: pass done: 1 recipients' '$LOGFILE') -ge $i ]"
	assert_eq "$i" "$(grep -c "mxlane/queuerun\[$DPID\]: pass done: 1 recipients" "$LOGFILE")" "passes of the daemon (pid $DPID) that delivered one recipient"
done
kill -TERM "$DPID"
if wait_for 10 sh -c "! kill -0 $DPID 2>/dev/null"; then
	wait "$DPID"
	assert_eq 0 "$?" "idle daemon's exit status after SIGTERM"
else
	fail "idle daemon still running 10 s after SIGTERM"
fi

# ---------------------------------------------------------------- selection

section "sendmail -qI, -qR, -qS select only matching mail"
world select "immediate_delivery = false"
submit_file "$(message_file sel-m1)" -i -f s1@src.example a@sel1.test;	M1=$NEWID
submit_file "$(message_file sel-m2)" -i -f s2@src.example b@sel2.test;	M2=$NEWID
submit_file "$(message_file sel-m3)" -i -f s3@src.example c@sel3.test;	M3=$NEWID
submit_file "$(message_file sel-m4)" -i -f s1@src.example d@sel2.test;	M4=$NEWID
sel_arrived() { sinkq '" ".join(sorted(m["x_test_id"] for m in M if (m["x_test_id"] or "").startswith("sel-")))'; }
assert_exit 0 timeout -k 5 30 "$SENDMAIL" -qI"$M3"
assert_eq "sel-m3" "$(sel_arrived)" "delivered after -qI$M3"
assert_eq "$(printf '%s\n' "$M1" "$M2" "$M4" | sort)" "$(queue_ids | sort)" "queued after -qI"
assert_exit 0 timeout -k 5 30 "$SENDMAIL" -qRsel2.test
assert_eq "sel-m2 sel-m3 sel-m4" "$(sel_arrived)" "delivered after -qRsel2.test"
assert_eq "$M1" "$(queue_ids)" "queued after -qR"
assert_exit 0 timeout -k 5 30 "$SENDMAIL" -qSs1@src.example
assert_eq "sel-m1 sel-m2 sel-m3 sel-m4" "$(sel_arrived)" "delivered after -qSs1@src.example"
assert_queue_empty "select world at the end"

# ---------------------------------------------------------------- max-time

section "queuerun run --max-time bounds a pass"
world maxtime "immediate_delivery = false"
for d in 1 2 3 4; do
	submit_file "$(message_file mt$d)" "${S[@]}" x@mt$d.test
done
# Each domain is its own session on an MX that waits 250 ms before each
# reply line (about 3 s a session): the sessions run at once, and the
# time limit abandons those not done at 2 s (all of them, or nearly).
t0=$(now)
assert_exit 0 "$QUEUERUN" run --max-time 2
t1=$(now)
mt_done=$(sinkq 'len([m for m in M if (m["x_test_id"] or "").startswith("mt")])')
say "--max-time 2 pass: $(pyc "round($t1 - $t0, 2)") s, $mt_done of 4 delivered"
assert_eq 1 "$(pyc "int($t1 - $t0 < 6)")" "the --max-time 2 pass ended within 6 s ($(pyc "round($t1 - $t0, 2)") s)"
assert_eq 1 "$(pyc "int(0 <= $mt_done < 4)")" "messages delivered by the --max-time pass ($mt_done, want 0-3)"
assert_eq "$((4 - mt_done))" "$(queue_count)" "messages still queued after --max-time"
no_active "recipients after --max-time"
assert_exit 0 "$QUEUERUN" run
assert_queue_empty "max-time world after a full pass"
assert_eq "1 1 1 1" "$(sinkq '" ".join(str(len(tid("mt%d" % d))) for d in range(1, 5))')" \
    "each --max-time message delivered exactly once"

# ---------------------------------------------------------------- SIGTERM

section "SIGTERM to a daemon in the middle of a slow delivery"
world term "immediate_delivery = false"
submit_file "$(message_file term)" "${S[@]}" t1@term.test t2@term.test t3@term.test
ID_T=$NEWID
"$QUEUERUN" run --daemon 1h >"$W/daemon.out" 2>&1 &
DPID=$!
track_pid "$DPID"
# The MX waits 0.7 s before each reply line: about 10 s for the
# transaction, so SIGTERM comes in its middle.
if wait_for 10 sink_true 'len([r for r in of("connect") if r["listener"].startswith("'$IP_SLOW':")]) == 1'; then
	pass
else
	fail "the daemon never connected to the slow MX" "$(cat "$LOGFILE")"
fi
sleep 1.5
t0=$(now)
kill -TERM "$DPID"
if wait_for 10 sh -c "! kill -0 $DPID 2>/dev/null"; then
	wait "$DPID"
	rc=$?
	t1=$(now)
	say "daemon exited $(pyc "round($t1 - $t0, 2)") s after SIGTERM"
	assert_eq 0 "$rc" "daemon's exit status after SIGTERM"
	assert_eq 1 "$(pyc "int($t1 - $t0 < 5)")" "daemon exited within 5 s of SIGTERM"
else
	fail "daemon still running 10 s after SIGTERM"
	kill -9 "$DPID"
fi
# Abandoned (the MX never saw the final dot): every recipient queued
# again, due now. Finished instead: the MX has it and it is gone (the
# time limit above says whether that was quick).
accepted=$(sinkq 'len(tid("term"))')
for r in t1 t2 t3; do
	if [ "$accepted" = 0 ]; then
		assert_eq queued "$(rcpt_get "$ID_T" $r@term.test state)" "state of $r@term.test after SIGTERM"
	fi
done
[ "$accepted" = 0 ] || check_gone "$ID_T"
no_active "recipients after SIGTERM"
TERM_IP=$IP_OK
write_zone
assert_exit 0 "$QUEUERUN" run
check_gone "$ID_T"
assert_eq '["t1@term.test", "t2@term.test", "t3@term.test"]' \
    "$(sinkq 'json.dumps(sorted(sum((m["rcpt_tos"] for m in tid("term")), [])))')" \
    "recipients delivered, each exactly once"

# ---------------------------------------------------------------- double bounce

section "a bounce that bounces is discarded, no loop"
world dbl "immediate_delivery = false"
nulls_before=$(sinkq 'len([m for m in M if m["mail_from"] == ""])')
submit_file "$(message_file dbl)" -i -f '<>' r550-dbl@ok.test
ID_DBL=$NEWID
assert_sender "$ID_DBL" ""
for i in 1 2 3; do
	assert_exit 0 "$QUEUERUN" run
done
check_log "$ID_DBL" r550-dbl@ok.test bounced '5\.1\.1' "550 5.1.1"
check_gone "$ID_DBL"
assert_queue_empty "after a double bounce"
assert_eq 0 "$(grep -c 'sender non-delivery notification' "$LOGFILE")" "notifications queued for a null-sender message"
assert_match "$(grep -F "$ID_DBL" "$LOGFILE")" "$ID_DBL: .*discarded" "double bounce logged as discarded"
assert_eq "$nulls_before" "$(sinkq 'len([m for m in M if m["mail_from"] == ""])')" "null-sender messages at the sink"
assert_eq 1 "$(grep -c 'mxlane/smtp\[' "$LOGFILE")" "smtp log lines in the double-bounce world"

section "a bounce that bounces goes to the addresses of the postmaster alias"
# unqualified names become @ok.test, which the sink takes
world pm "immediate_delivery = false" 'myorigin = "ok.test"'
printf 'postmaster: root\nroot: pm-admin@src.example, ops, \\keep\nops: root, oncall@ok.test\n' >"$ALIASES"
assert_exit 0 "$NEWALIASES"
submit_file "$(message_file pm)" -i -f '<>' r550-pm@ok.test
ID_PM=$NEWID
for i in 1 2 3; do
	assert_exit 0 "$QUEUERUN" run
done
check_log "$ID_PM" r550-pm@ok.test bounced '5\.1\.1' "550 5.1.1"
check_gone "$ID_PM"
assert_queue_empty "after the postmaster notification went out"
assert_eq 1 "$(grep -c "$ID_PM: sender non-delivery notification" "$LOGFILE")" \
    "notifications queued for the double bounce"
dsn_table
# root is a loop (ops names it again): root@ok.test itself gets it
assert_eq "keep@ok.test oncall@ok.test pm-admin@src.example root@ok.test" \
    "$(dsn_rows "$ID_PM" | cut -f3 | tr ',' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')" \
    "recipients of the postmaster notification at the sink"
assert_eq "failed r550-pm@ok.test" "$(dsn_rows "$ID_PM" | cut -f5,4 | sort -u | awk -F'\t' '{print $2, $1}')" \
    "what the postmaster notification reports"
assert_eq 0 "$(sinkq 'len(to("postmaster@ok.test"))')" "messages for postmaster@ok.test itself"
assert_contains "$(sinkq 'open(to("oncall@ok.test")[0]["file"], errors="replace").read()')" \
    "To: <postmaster@ok.test>" "To: of the postmaster notification"

section "a postmaster notification that bounces is discarded, no loop"
world pmloop "immediate_delivery = false" 'myorigin = "ok.test"'
printf 'postmaster: r550-postmaster@ok.test\n' >"$ALIASES"
assert_exit 0 "$NEWALIASES"
submit_file "$(message_file pmloop)" -i -f '<>' r550-pmloop@ok.test
ID_PML=$NEWID
# Before: each notice bounced into a new one, thousands in one pass.
for i in 1 2 3; do
	assert_exit 0 timeout -k 5 30 "$QUEUERUN" run
done
assert_queue_empty "after the postmaster notification bounced"
assert_eq 1 "$(grep -c 'sender non-delivery notification' "$LOGFILE")" \
    "notifications queued in the postmaster-loop world"
NOTICE=$(sed -n "s/.*$ID_PML: sender non-delivery notification: \([0-9A-F]*\).*/\1/p" "$LOGFILE")
check_log "$NOTICE" r550-postmaster@ok.test bounced '5\.1\.1' "550 5.1.1"
assert_match "$(grep -F "$NOTICE:" "$LOGFILE")" "$NOTICE: undeliverable postmaster notification discarded" \
    "the bounced postmaster notification logged as discarded"
assert_eq 2 "$(grep -c 'mxlane/smtp\[' "$LOGFILE")" "smtp log lines in the postmaster-loop world"

# ---------------------------------------------------------------- pflogsumm

section "pflogsumm reads the log"
world pflog "immediate_delivery = false"
submit_file "$(message_file pf1)" "${S[@]}" ok1@ok.test ok2@ok.test
submit_file "$(message_file pf2)" "${S[@]}" r550-x@ok.test
submit_file "$(message_file pf3)" "${S[@]}" r450-y@ok.test
submit_file "$(message_file pf4)" -i -f bob@src.example ok3@a-only.test
assert_exit 0 "$QUEUERUN" run
assert_exit 0 "$QUEUERUN" run
# What happened: 4 messages received; ok1, ok2, ok3 and the bounce to
# alice delivered (4); r450-y deferred once (1 message); r550-x bounced.
assert_exit 0 pflogsumm --syslog-name=mxlane "$LOGFILE"
cp "$OUT" "$W/pflogsumm.out"
grand() { sed -n "s/^ *\([0-9][0-9]*\)  *$1.*/\1/p" "$W/pflogsumm.out" | head -1; }
assert_eq "4 4 1 1" "$(grand received) $(grand delivered) $(grand deferred) $(grand bounced)" \
    "pflogsumm received, delivered, deferred, bounced"
assert_match "$(sed -n '/deferred/p' "$W/pflogsumm.out" | head -1)" '\(1 +deferrals\)' "pflogsumm deferrals"

section "nothing unexpected"
assert_no_traceback

finish
