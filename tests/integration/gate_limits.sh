#!/bin/bash
# NAME
#	gate_limits.sh - submitter limits, with two real Unix users and an
#	installed, set-id sendmail
# DESCRIPTION
#	Builds and installs mxlane under a scratch prefix (as local_users.sh
#	does: sendmail set-id to a mail system account of its own), creates
#	two site users, and configures
#	    submitter_limit WEB { messages = "3/d" action = "hold" }
#	    submitter_limit "*" { messages = "2/d" recipients = "4/d"
#	                          action = "tempfail" }
#	(windows of a day, so that the test does not straddle one). Asserts:
#	  - WEB: its first 3 messages are queued as usual, the next ones
#	    are queued on hold ("held: yes" in queuerun show, "(queue
#	    hold)" and "hold: user ... over its limit" in the log), exit 0;
#	  - OTHER (under "*"): one message to 5 recipients is refused (75,
#	    over 4 recipients) and not counted; of 10 submissions started at
#	    once exactly 2 are queued (0) and 8 refused (75), nothing else;
#	    in sendmail -bs "451 4.7.1"; the count is by the real uid, so a
#	    USER or LOGNAME naming another user changes nothing;
#	  - root is exempt: 5 messages, none held or refused;
#	  - going over is logged once per user and limit, however many
#	    messages follow (a refused one adds no line to the log; its
#	    caller reads why on standard error);
#	  - the counts are the mail system's: a user can neither read,
#	    remove nor rewrite their own count file, nor steer sendmail to
#	    another spool or configuration (-C, MXLANE_CONFIG);
#	  - queuerun limits (and queuerun status, as text and JSON) lists
#	    exactly the limits the two users went
#	    over (WEB's messages, OTHER's messages and recipients), with
#	    the count, the limit and the action.
#	Needs root (CI runs as root); creates and removes its accounts.
#	Takes about 60 seconds, most of it the build.
# SEE ALSO
#	local_users.sh, gate_headers.sh, mxlane.conf(5)
set -u
. "$(dirname "$0")/../lib.sh"

need_cmd setpriv useradd userdel groupdel make findmnt
if [ "$(id -u)" -ne 0 ]; then
	fail "gate_limits needs root (CI runs as root)"
	finish
fi

P=$(setid_prefix limits) || finish

SYS=mxgs$$	# the mail system's account
WEB=mxgw$$	# a web site with its own limit
OTH=mxgo$$	# another site, under "*"
cleanup() {
	local u
	for u in $WEB $OTH $SYS; do
		pkill -KILL -u "$u" 2>/dev/null
	done
	sleep 0.2
	for u in $WEB $OTH $SYS; do
		userdel "$u" 2>/dev/null
		groupdel "$u" 2>/dev/null
	done
	rm -rf "$P"
}
on_exit cleanup

section "make install into a scratch prefix"
unset MAKEFLAGS MAKELEVEL MFLAGS MXLANE_CONFIG
mk=(make -C "$MXL_SRC" -j2 O="$P/build" PREFIX="$P/usr"
    SYSCONFDIR="$P/etc" SPOOLDIR="$P/spool" MXLANE_USER="$SYS"
    MXLANE_GROUP="$SYS")
# Under make check-sanitize the scratch system is sanitized too.
[ "${MXL_SANITIZE:-}" = 1 ] && mk+=(SANITIZE=1)
if "${mk[@]}" all >"$P/build.log" 2>&1; then
	pass
else
	fail "building the scratch system" "$(tail -20 "$P/build.log")"
	finish
fi
assert_exit 0 "${mk[@]}" install
SM=$P/usr/sbin/sendmail
QR=$P/usr/sbin/queuerun
SPOOL=$P/spool
assert_eq "6755 $SYS" "$(stat -c '%a %U' "$SM")" "sendmail's mode and owner"
for u in $WEB $OTH; do
	useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$u" ||
	    fail "could not create the user $u"
done
OTH_UID=$(id -u "$OTH")
CONF=$P/etc/mxlane/mxlane.conf
LOG=$P/log/mxlane.log
mkdir -p "$P/log" && chown "$SYS:$SYS" "$P/log"
cat >"$CONF" <<EOF
spool_directory = "$SPOOL"
myhostname = "host.example.org"
myorigin = "example.org"
log_file = "$LOG"
immediate_delivery = false
resolver = "127.0.0.1:9"
submitter_limit "$WEB" { messages = "3/d" action = "hold" }
submitter_limit "*"    { messages = "2/d" recipients = "4/d" action = "tempfail" }
EOF
chmod 0644 "$CONF"
# A configuration a user would like sendmail to read instead.
printf 'spool_directory = "%s"\n' "$P/other" >"$P/lax.conf"
chmod 0644 "$P/lax.conf"
cd /

as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --init-groups -- \
	    env USER=root LOGNAME=root HOME=/ "$@"
}
message() { printf 'From: site <site@example.org>\nTo: <%s@rcpt.example>\nSubject: %s\n\nbody\n' "$1" "$1"; }
# queued_ids: ids in root's mailq
queued_ids() { timeout 60 "$SM" -bp | grep -oE '^[0-9A-F]{13}' | sort; }
held_of() { timeout 60 "$QR" show "$1" | sed -n 's/^held: //p'; }

section "a site with action hold: over the limit, queued but held"
declare -a WIDS=()
for i in 1 2 3 4 5; do
	before=$(queued_ids)
	message "web-$i" | assert_exit 0 as "$WEB" "$SM" -t -i
	WIDS[$i]=$(comm -13 <(printf '%s\n' "$before") <(queued_ids) | head -1)
done
for i in 1 2 3; do
	assert_eq no "$(held_of "${WIDS[$i]}")" "message $i of $WEB held"
done
for i in 4 5; do
	assert_eq yes "$(held_of "${WIDS[$i]}")" "message $i of $WEB held"
	assert_contains "$(grep -F "${WIDS[$i]}: from=<" "$LOG")" "(queue hold)" "queue line of message $i"
	assert_contains "$(grep -F "${WIDS[$i]}: hold: user $WEB" "$LOG")" "over its limit of 3 messages per day" "hold line of message $i"
done
assert_eq 1 "$(grep -c "user $WEB (uid [0-9]*) is over its limit of 3 messages per day" "$LOG")" "over-limit lines for $WEB"

section "a site under \"*\" with action tempfail"
assert_exit 75 as "$OTH" "$SM" -i a@rcpt.example b@rcpt.example c@rcpt.example d@rcpt.example e@rcpt.example < <(message oth-big)
assert_contains "$(last_err)" "over its limit of 4 recipients per day" "refusal of 5 recipients"
# Ten at once: the count is taken under a lock, so exactly two get in.
for i in $(seq 1 10); do
	message "oth-$i" >"$P/m.$i"
	chmod 0644 "$P/m.$i"
	( as "$OTH" "$SM" -t -i <"$P/m.$i" >/dev/null 2>&1; echo $? >"$P/rc.$i" ) &
done
wait
rcs=$(cat "$P"/rc.* | sort | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')
assert_eq "0x2 75x8 " "$rcs" "exit statuses of 10 parallel submissions (2 allowed)"
{
	printf 'HELO site.example\r\nMAIL FROM:<site@example.org>\r\nRCPT TO:<bs@rcpt.example>\r\nDATA\r\n'
	printf 'Subject: bs\r\n\r\nbody\r\n.\r\nQUIT\r\n'
} >"$P/bs.in"
chmod 0644 "$P/bs.in"
run as "$OTH" "$SM" -bs <"$P/bs.in"
assert_match "$(last_out)" $'\n''451 4\.7\.1 [^\n]*over its limit of 2 messages per day' "-bs reply over the limit"
# Other names and another configuration change nothing.
run as "$OTH" env USER="$WEB" LOGNAME="$WEB" MXLANE_CONFIG="$P/lax.conf" "$SM" -C "$P/lax.conf" -t -i <"$P/m.1"
assert_eq 75 "$(last_rc)" "exit status with USER, MXLANE_CONFIG and -C pointing elsewhere"
assert_eq 1 "$(grep -c "user $OTH (uid [0-9]*) is over its limit of 2 messages per day" "$LOG")" "over-limit lines for $OTH's messages"
assert_eq 1 "$(grep -c "user $OTH (uid [0-9]*) is over its limit of 4 recipients per day" "$LOG")" "over-limit lines for $OTH's recipients"
assert_eq 0 "$(grep -c "error: $OTH is over its limit" "$LOG")" "lines for each refused submission"
assert_eq 2 "$(queued_ids | while read -r id; do timeout 60 "$QR" show "$id" | grep -q "^user: $OTH\$" && echo "$id"; done | grep -c .)" "messages of $OTH queued"

section "the counts are the mail system's"
F=$SPOOL/limits/$OTH_UID
assert_eq "600 $SYS" "$(stat -c '%a %U' "$F")" "mode and owner of $OTH's count file"
run as "$OTH" cat "$F"
assert_ne 0 "$(last_rc)" "exit status of $OTH reading its count"
run as "$OTH" rm -f "$F"
assert_ne 0 "$(last_rc)" "exit status of $OTH removing its count"
run as "$OTH" sh -c ": >'$F'"
assert_ne 0 "$(last_rc)" "exit status of $OTH truncating its count"
assert_exit 75 as "$OTH" "$SM" -t -i <"$P/m.2"

section "root is exempt unless named"
for i in 1 2 3 4 5; do
	message "root-$i" | assert_exit 0 "$SM" -t -i
done
assert_eq 0 "$(grep -c "user root (uid 0) is over" "$LOG")" "over-limit lines for root"

section "queuerun limits"
assert_exit 0 "$QR" limits
out=$(last_out)
assert_eq 3 "$(printf '%s\n' "$out" | grep -c .)" "lines of queuerun limits"
line_of() { printf '%s\n' "$out" | grep -F "$1 " | grep -F " $2="; }
assert_match "$(line_of "$WEB" messages)" "^$WEB uid=[0-9]+ messages=5 limit=3/d action=hold until=[0-9-]+ 00:00:00 UTC rule=$WEB\$" "$WEB in queuerun limits"
assert_match "$(line_of "$OTH" messages)" "^$OTH uid=$OTH_UID messages=2 limit=2/d action=tempfail until=[0-9-]+ 00:00:00 UTC rule=[*]\$" "$OTH's messages in queuerun limits"
assert_match "$(line_of "$OTH" recipients)" "^$OTH uid=$OTH_UID recipients=2 limit=4/d action=tempfail until=[0-9-]+ 00:00:00 UTC rule=[*]\$" "$OTH's recipients in queuerun limits"

section "queuerun status lists the users over their limits"
assert_exit 0 "$QR" status
assert_eq "$(printf '%s\n' "$out" | sed 's/^/  /')" \
    "$(last_out | sed -n '/^submitter limits:$/,$p' | tail -n +2)" \
    "status's submitter limits vs queuerun limits"
assert_exit 0 "$QR" status --json
assert_eq "[['$OTH', 'messages', 2, '2/d', 'tempfail'], ['$OTH', 'recipients', 2, '4/d', 'tempfail'], ['$WEB', 'messages', 5, '3/d', 'hold']]" \
    "$(last_out | "$PYTHON" -c 'import json, sys
print(sorted([o["user"], o["what"], o["count"], o["limit"], o["action"]] for o in json.load(sys.stdin)["over_limits"]))')" \
    "over_limits in status --json"
finish
