#!/bin/bash
# NAME
#	local_users - a shared host's local users against an installed mxlane
# DESCRIPTION
#	Builds mxlane with every path under a scratch prefix and installs
#	it there with 'make install' as root (no DESTDIR), with a mail
#	system account of its own (MXLANE_USER/MXLANE_GROUP), then tries it
#	the way the users of a shared web host would, one of them hostile.
#	Asserts:
#	  - make install created the accounts and set every owner and mode
#	    (sendmail 6755 owned by the account, queuerun 0755 root, the
#	    spool 0700 the account's);
#	  - a user's sendmail runs under the mail system's ids only: the
#	    user can neither stop nor kill it, and while the hostile user's
#	    submissions sit stalled (an SMTP session in DATA, a message
#	    never finished on stdin), every other user's submission still
#	    succeeds within a second;
#	  - submissions killed with SIGKILL at random moments (as the OOM
#	    killer or a cgroup could) never make another user's submission
#	    fail, never queue half a message, and exit 75 never means
#	    queued; every submission that exited 0 is queued exactly once;
#	  - tiny resource limits make sendmail refuse (75) before it writes
#	    anything; closed standard output and error do not corrupt a
#	    message;
#	  - everything in the spool belongs to the mail system's account,
#	    whoever submitted and whatever root ran (sendmail, mailq,
#	    newaliases, queuerun), so no user's disk quota is charged;
#	  - a user's -q starts a runner as the mail system (the maildrop is
#	    picked up); -q<time> is refused for users (77);
#	  - mailq lists a user's own messages only, all of them for root and
#	    for a member of the mail system's group, who still cannot open
#	    the spool or run queuerun on it;
#	  - -C, MXLANE_CONFIG, DB_HOME and TMPDIR do not steer a user's
#	    sendmail; the submitter recorded is the real uid, whatever USER
#	    says; newaliases is root's;
#	  - queuerun and mailq exit 75 and say why when the spool is not
#	    usable.
#	Needs root (CI runs as root); creates and removes its accounts.
set -u
. "$(dirname "$0")/../lib.sh"

need_cmd setpriv getent groupadd groupdel useradd userdel usermod prlimit \
    stat find make mkfifo
if [ "$(id -u)" -ne 0 ]; then
	fail "local_users needs root (CI runs as root)"
	finish
fi

P=$(setid_prefix users) || finish

SYS=mxls$$	# the mail system's account
ATK=mxla$$	# the hostile site user
VIC=mxlv$$	# another site user
MON=mxlm$$	# monitoring, in the mail system's group
made_accounts=
cleanup() {
	exec 7>&- 8>&- 9>&- 2>/dev/null
	local u
	for u in $ATK $VIC $MON $SYS; do
		pkill -KILL -u "$u" 2>/dev/null
	done
	sleep 0.2
	for u in $ATK $VIC $MON $SYS; do
		userdel "$u" 2>/dev/null
	done
	for u in $ATK $VIC $MON $SYS; do
		groupdel "$u" 2>/dev/null
	done
	rm -rf "$P"
}
on_exit cleanup

section "make install into a scratch prefix, with accounts of its own"
unset MAKEFLAGS MAKELEVEL MFLAGS MXLANE_CONFIG
mk=(make -C "$MXL_SRC" -j2 O="$P/build" PREFIX="$P/usr"
    SYSCONFDIR="$P/etc" SPOOLDIR="$P/spool" MXLANE_USER="$SYS"
    MXLANE_GROUP="$SYS")
if "${mk[@]}" all >"$P/build.log" 2>&1; then
	pass
else
	fail "building the scratch system" "$(tail -20 "$P/build.log")"
	finish
fi
assert_exit 0 "${mk[@]}" install
assert_contains "$(last_out)" "created the system user $SYS" "make install's report"
SM=$P/usr/sbin/sendmail
QR=$P/usr/sbin/queuerun
SPOOL=$P/spool
assert_eq "6755 $SYS $SYS" "$(stat -c '%a %U %G' "$SM")" "sendmail's mode and owner"
assert_eq "755 root root" "$(stat -c '%a %U %G' "$QR")" "queuerun's mode and owner"
assert_eq "700 $SYS $SYS" "$(stat -c '%a %U %G' "$SPOOL")" "the spool's mode and owner"
assert_match "$(getent passwd "$SYS" | cut -d: -f7)" '(nologin|false)$' \
    "the mail system account's shell"
assert_eq "../sbin/sendmail" "$(readlink "$P/usr/bin/mailq")" "mailq link"
assert_eq "755 644" "$(stat -c '%a' "$P/usr/share/mxlane/check_mxlane" \
    "$P/usr/share/mxlane/grafana/mxlane.json" | tr '\n' ' ' | sed 's/ $//')" \
    "the Nagios plugin and the Grafana dashboard installed"
# The sample configuration works as installed, with the reply rules it
# includes: the shipped classes right out of the box.
assert_eq "644" "$(stat -c '%a' "$P/etc/mxlane/replies.conf")" "replies.conf installed"
assert_exit 0 "$QR" -C "$P/etc/mxlane/mxlane.conf" classify \
    "550-5.1.1 The email account that you tried to reach does not exist."
assert_eq "class: bad-mailbox" "$(head -1 "$OUT")" "classify with the installed configuration"

# A staging tree (a package build): nothing is created on this host,
# and the report says what the package's postinst must do.
NONE=mxln$$
assert_exit 0 make -C "$MXL_SRC" -j2 O="$P/build" PREFIX="$P/usr" \
    SYSCONFDIR="$P/etc" SPOOLDIR="$P/spool" MXLANE_USER="$NONE" \
    MXLANE_GROUP="$NONE" DESTDIR="$P/stage" install
for want in "postinst" "groupadd --system $NONE" "useradd --system --gid $NONE" \
    "chmod 6755 $P/usr/sbin/sendmail" "chmod 0700 $P/spool"; do
	assert_contains "$(last_out)" "$want" "make install DESTDIR's report"
done
assert_eq "" "$(getent passwd "$NONE"; getent group "$NONE")" \
    "accounts make install DESTDIR created on this host"
assert_eq "755" "$(stat -c '%a' "$P/stage$P/usr/sbin/sendmail")" \
    "mode of the staged sendmail (set-id is the postinst's job)"

for u in $ATK $VIC $MON; do
	useradd --system --user-group --no-create-home --shell /usr/sbin/nologin "$u" ||
	    fail "could not create the user $u"
done
usermod -a -G "$SYS" "$MON"
SYS_UID=$(id -u "$SYS")
ATK_UID=$(id -u "$ATK")
VIC_UID=$(id -u "$VIC")

# The installed configuration, made safe for a test: no resolver but a
# closed port on loopback, nothing delivered at submission.
CONF=$P/etc/mxlane/mxlane.conf
mkdir -p "$P/log" && chown "$SYS:$SYS" "$P/log"
printf 'perm-alias: perm-aliased@rcpt.example\n' >"$P/etc/aliases"
cat >"$CONF" <<EOF
spool_directory = "$SPOOL"
myhostname = "host.example.org"
myorigin = "example.org"
alias_maps = "$P/etc/aliases"
log_file = "$P/log/mxlane.log"
immediate_delivery = false
resolver = "127.0.0.1:9"
lane bulk { match_user = { "$ATK" } }
lane vip { allow_users = { "$VIC" } }
EOF
chmod 0644 "$CONF" "$P/etc/aliases"
cd /

# as USER CMD...: CMD as USER (its own group only) with an environment
# that claims to be root's.
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --init-groups -- \
	    env USER=root LOGNAME=root HOME=/ "$@"
}
message() {	# message TOKEN: a small message to TOKEN@rcpt.example
	printf 'From: Perm <perm@sender.example>\nTo: <%s@rcpt.example>\nSubject: %s\n\nbody of %s\n' \
	    "$1" "$1" "$1"
}
rootq() { timeout 120 "$SM" -bp; }
tokens() { grep -o 'perm-[a-z0-9-]*@rcpt\.example' | sed 's/@rcpt\.example$//' | sort; }
trailer_count() { sed -n 's/^-- [0-9]* Kbytes in \([0-9]*\) Requests\{0,1\}\.$/\1/p'; }
ms() { date +%s%3N; }
not_owned() { find "$SPOOL" "$P/log" ! -user "$SYS" -print; }

section "a submission is one private file of the mail system's"
message perm-vic-1 | assert_exit 0 as "$VIC" "$SM" -t -i
files=$(find "$SPOOL/maildrop" -type f -printf '%m %u\n')
assert_eq "600 $SYS" "$files" "the maildrop file of the victim's submission"
assert_eq "" "$(not_owned)" "spool files not owned by $SYS"
assert_eq "perm-vic-1" "$(as "$VIC" "$SM" -bp | tokens)" "the victim's mailq"
assert_eq "" "$(as "$ATK" "$SM" -bp | tokens)" "the hostile user's mailq"
assert_eq "perm-vic-1" "$(as "$MON" "$SM" -bp | tokens)" "mailq of a member of $SYS"
run as "$MON" ls "$SPOOL"
assert_ne 0 "$(last_rc)" "exit status of ls of the spool by a member of $SYS"
run as "$MON" "$QR" pickup
assert_eq 75 "$(last_rc)" "exit status of queuerun run by a member of $SYS"
assert_contains "$(last_err)" "spool directory $SPOOL" "queuerun's complaint"

section "the hostile user can neither stop nor kill their own sendmail"
mkfifo "$P/atk.smtp" "$P/atk.stdin"
chmod 0644 "$P/atk.smtp" "$P/atk.stdin"
gone_file() { [ ! -e "$1" ]; }
# child_of PID: the program a backgrounded 'as' function runs (setpriv
# execs env, which execs sendmail: one process, the subshell's child)
child_of() {
	local c
	for _ in $(seq 1 100); do
		c=$(pgrep -P "$1" | head -1)
		[ -n "$c" ] && { echo "$c"; return; }
		sleep 0.05
	done
}
as "$ATK" "$SM" -bs <"$P/atk.smtp" >"$P/atk.smtp.out" 2>&1 &
smtp_job=$!
exec 7>"$P/atk.smtp"
as "$ATK" "$SM" -t -i <"$P/atk.stdin" >/dev/null 2>&1 &
stdin_job=$!
exec 8>"$P/atk.stdin"
smtp_pid=$(child_of "$smtp_job")
stdin_pid=$(child_of "$stdin_job")
printf 'EHLO evil.example\r\nMAIL FROM:<a@evil.example>\r\nRCPT TO:<perm-never@rcpt.example>\r\nDATA\r\nSubject: half\r\n\r\nhalf a line' >&7
printf 'To: perm-never-2@rcpt.example\nSubject: never ends\n\nfirst line\n' >&8
wait_for 10 grep -q '^354' "$P/atk.smtp.out"
assert_contains "$(cat "$P/atk.smtp.out")" "354" "the stalled SMTP session is in DATA"
ids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$smtp_pid/status")
assert_eq "$SYS_UID $SYS_UID $SYS_UID $SYS_UID" "$ids" \
    "real, effective, saved and file uid of the user's sendmail"
for sig in STOP KILL TERM; do
	run as "$ATK" kill -s "$sig" "$smtp_pid"
	assert_ne 0 "$(last_rc)" "exit status of the user's kill -$sig of their sendmail"
done
run as "$ATK" kill -s STOP "$stdin_pid"
assert_ne 0 "$(last_rc)" "exit status of the user's kill -STOP of sendmail reading stdin"
assert_eq "S" "$(awk '{print $3}' "/proc/$smtp_pid/stat")" "state of the user's sendmail"

section "meanwhile every other user's submission succeeds within a second"
slowest=0
for i in 1 2 3 4 5 6 7 8; do
	message "perm-vic-s$i" >"$P/msg.s$i"
	chmod 0644 "$P/msg.s$i"
	t0=$(ms)
	as "$VIC" "$SM" -t -i <"$P/msg.s$i"
	rc=$?
	t=$(($(ms) - t0))
	[ "$t" -gt "$slowest" ] && slowest=$t
	assert_eq 0 "$rc" "exit status of the victim's submission $i"
done
say "slowest victim submission: $slowest ms"
if [ "$slowest" -le 1000 ]; then
	pass
else
	fail "a victim's submission took $slowest ms (at most 1000)"
fi
message perm-root-s | assert_exit 0 "$SM" -t -i
assert_eq 0 "$(rootq >/dev/null; echo $?)" "exit status of root's mailq"
# The SMTP session ends at end of file in DATA: nothing may be queued.
# The other one would complete its message at end of file: it is killed.
kill -KILL "$stdin_pid"
exec 7>&- 8>&-
wait "$smtp_job" "$stdin_job" 2>/dev/null
assert_not_contains "$(rootq | tokens)" "perm-never" \
    "the queue after the stalled sessions ended without finishing"

section "submissions killed at random moments harm nobody else"
: >"$P/kills"
# read -t on a FIFO nobody writes: a pause of a few ms without a fork
mkfifo "$P/never"
exec 9<>"$P/never"
for i in $(seq 1 30); do
	message "perm-kill-$i" >"$P/msg.k$i"
	message "perm-vic-k$i" >"$P/msg.v$i"
	chmod 0644 "$P/msg.k$i" "$P/msg.v$i"
	( as "$ATK" "$SM" -t -i <"$P/msg.k$i"; echo "$i $?" >>"$P/kills" ) &
	kpid=$!
	( as "$VIC" "$SM" -t -i <"$P/msg.v$i"; echo "v$i $?" >>"$P/kills" ) &
	vpid=$!
	# A submission takes a few milliseconds: this lands anywhere in it.
	read -r -t "0.00$((RANDOM % 6))" -u 9
	pkill -KILL -P "$kpid" 2>/dev/null
	wait "$kpid" "$vpid" 2>/dev/null
done
assert_eq "" "$(grep '^v' "$P/kills" | grep -v ' 0$')" "victim submissions that did not exit 0"
assert_exit 0 "$QR" pickup
q=$(rootq | tokens)
dups=$(printf '%s\n' "$q" | uniq -d)
assert_eq "" "$dups" "messages queued twice"
bad=
for i in $(seq 1 30); do
	n=$(printf '%s\n' "$q" | grep -cx "perm-vic-k$i")
	[ "$n" = 1 ] || bad="${bad}perm-vic-k$i queued $n times
"
	rc=$(awk -v i="$i" '$1 == i {print $2}' "$P/kills")
	n=$(printf '%s\n' "$q" | grep -cx "perm-kill-$i")
	case $rc in
	0) [ "$n" = 1 ] || bad="${bad}perm-kill-$i exited 0 but is queued $n times
" ;;
	75) [ "$n" = 0 ] || bad="${bad}perm-kill-$i exited 75 but is queued
" ;;
	esac
done
assert_eq "" "$bad" "what the killed and the other submissions left in the queue"
say "hostile submissions: $(grep -c '^[0-9]* 0$' "$P/kills") exited 0, $(grep -c '^[0-9]* 137$' "$P/kills") killed"

section "tiny resource limits are refused before anything is written"
before=$(find "$SPOOL/maildrop" -type f | wc -l)
message perm-limit >"$P/msg.limit"
chmod 0644 "$P/msg.limit"
for lim in --fsize=1000 --nofile=10 --cpu=1 --as=60000000; do
	run prlimit "$lim" -- setpriv --reuid="$ATK" --regid="$ATK" --init-groups \
	    -- "$SM" -t -i <"$P/msg.limit"
	assert_eq 75 "$(last_rc)" "exit status with prlimit $lim"
	assert_contains "$(last_err)" "limit" "sendmail's message with prlimit $lim"
done
assert_eq "$before" "$(find "$SPOOL/maildrop" -type f | wc -l)" \
    "files in the maildrop after the refused submissions"
message perm-vic-after-limits | assert_exit 0 as "$VIC" "$SM" -t -i

section "closed standard output and error"
message perm-closed >"$P/msg.closed"
chmod 0644 "$P/msg.closed"
as "$ATK" sh -c 'exec "$1" -t -i <"$2" >&- 2>&-' sh "$SM" "$P/msg.closed"
assert_eq 0 "$?" "exit status with stdout and stderr closed"
id=$(rootq | awk '/^[0-9A-F]/ {id = substr($1, 1, 13)} $1 == "perm-closed@rcpt.example" {print id}')
assert_match "$id" '^[0-9A-F]{13}$' "queue id of the message submitted with stdout closed"
shown=$(timeout 60 "$QR" show "$id")
assert_contains "$shown" "body of perm-closed" "the stored message"
assert_eq "uid: $ATK_UID" "$(printf '%s\n' "$shown" | grep '^uid: ')" "uid recorded"
assert_eq "user: $ATK" "$(printf '%s\n' "$shown" | grep '^user: ')" "user recorded (USER said root)"

section "-C, MXLANE_CONFIG, DB_HOME and TMPDIR do not steer a user's sendmail"
mkdir -p "$P/evil/spool" "$P/evil/dbhome" "$P/evil/tmp"
chmod 1777 "$P/evil" "$P/evil/spool" "$P/evil/dbhome" "$P/evil/tmp"
printf 'spool_directory = "%s"\nmyorigin = "evil.example"\n' "$P/evil/spool" >"$P/evil.conf"
printf 'set_data_dir %s\nset_lg_dir %s\n' "$P/evil/dbhome" "$P/evil/dbhome" \
    >"$P/evil/dbhome/DB_CONFIG"
chmod 0644 "$P/evil.conf" "$P/evil/dbhome/DB_CONFIG"
message perm-atk-dashc | assert_exit 0 as "$ATK" "$SM" -C "$P/evil.conf" -t -i
message perm-atk-env | assert_exit 0 as "$ATK" env MXLANE_CONFIG="$P/evil.conf" \
    DB_HOME="$P/evil/dbhome" TMPDIR="$P/evil/tmp" "$SM" -t -i
assert_eq "" "$(find "$P/evil/spool" "$P/evil/tmp" -mindepth 1)" \
    "files in the spool and TMPDIR the user named"
assert_eq "DB_CONFIG" "$(ls -A "$P/evil/dbhome")" "files in the user's DB_HOME"
q=$(rootq | tokens)
assert_contains "$q" "perm-atk-dashc" "the real queue"
assert_contains "$q" "perm-atk-env" "the real queue"

section "mailq shows a user their own messages, root and the group all"
all=$(rootq | tokens)
atk_list=$(as "$ATK" "$SM" -bp)
assert_eq "$(printf '%s\n' "$all" | grep -E -e '-(kill|closed|atk)' | sort)" \
    "$(printf '%s\n' "$atk_list" | tokens)" "messages the hostile user's mailq lists"
assert_eq "$(printf '%s\n' "$atk_list" | tokens | grep -c .)" \
    "$(printf '%s\n' "$atk_list" | trailer_count)" "request count in the user's trailer"
assert_eq "$all" "$(as "$MON" "$SM" -bp | tokens)" "messages listed for a member of $SYS"

section "a lane the rules assign cannot be escaped with -O Lane="
# lane_of TOKEN: the lane of the queued message to TOKEN
lane_of() {
	local id
	id=$(rootq | awk -v r="$1@rcpt.example" '/^[0-9A-F]/ {id = substr($1, 1, 13)} $1 == r {print id; exit}')
	timeout 60 "$QR" show "$id" | sed -n 's/^lane: //p' | head -1
}
message perm-lane-atk | assert_exit 0 as "$ATK" "$SM" -O Lane=priority -t -i
assert_contains "$(last_err)" "not allowed" "sendmail's warning to the hostile user"
assert_eq bulk "$(lane_of perm-lane-atk)" "lane of the hostile user's -O Lane=priority"
message perm-lane-atkvip | assert_exit 0 as "$ATK" "$SM" -O Lane=vip -t -i
assert_eq bulk "$(lane_of perm-lane-atkvip)" "lane of the hostile user's -O Lane=vip"
message perm-lane-vic | assert_exit 0 as "$VIC" "$SM" -O Lane=vip -t -i
assert_eq vip "$(lane_of perm-lane-vic)" "lane of -O Lane=vip by a user allow_users lists"
message perm-lane-mon | assert_exit 0 as "$MON" "$SM" -O Lane=vip -t -i
assert_eq vip "$(lane_of perm-lane-mon)" "lane of -O Lane=vip by a member of $SYS"
message perm-lane-root | assert_exit 0 "$SM" -O Lane=vip -t -i
assert_eq vip "$(lane_of perm-lane-root)" "lane of root's -O Lane=vip"

section "newaliases is root's; root's programs leave nothing of root's in the spool"
run as "$ATK" "$SM" -bi
assert_eq 77 "$(last_rc)" "exit status of the user's newaliases"
assert_exit 0 sh -c 'umask 022; exec "$1" -bi' sh "$SM"
printf 'To: perm-alias\nSubject: alias\n\nbody\n' | assert_exit 0 as "$ATK" "$SM" -t -i
assert_contains "$(rootq | tokens)" "perm-aliased" "the queue after a message to an alias"
assert_exit 0 "$QR" run --max-time 20
assert_exit 0 "$QR" pickup
assert_eq "" "$(not_owned)" "spool and log files not owned by $SYS after root's programs"

section "the user's -q is a request to the mail system"
# (Files of the submissions killed above stay, incomplete, until they
# are old enough to be removed: only this message's file must go.)
before=$(ls "$SPOOL/maildrop")
message perm-q | assert_exit 0 as "$VIC" "$SM" -t -i
qfile=$(ls "$SPOOL/maildrop" | grep -vxF -e "$before" -e '' | head -1)
[ -n "$before" ] || qfile=$(ls "$SPOOL/maildrop" | head -1)
assert_match "$qfile" '^[0-9A-F]{13}$' "the maildrop file of the message"
run as "$ATK" "$SM" -q1h
assert_eq 77 "$(last_rc)" "exit status of the user's -q1h"
assert_exit 0 as "$ATK" "$SM" -q
wait_for 20 gone_file "$SPOOL/maildrop/$qfile"
assert_eq "no" "$([ -e "$SPOOL/maildrop/$qfile" ] && echo yes || echo no)" \
    "the message still in the maildrop after the user's -q"
assert_contains "$(rootq | tokens)" "perm-q" "the queue after the user's -q"
assert_eq "" "$(not_owned)" "spool files not owned by $SYS after the user's -q"

section "requests coalesce: while a requested run goes on, -q starts none"
before=$(ls "$SPOOL/maildrop")
message perm-q2 | assert_exit 0 as "$VIC" "$SM" -t -i
qfile=$(ls "$SPOOL/maildrop" | grep -vxF -e "$before" -e '' | head -1)
[ -n "$before" ] || qfile=$(ls "$SPOOL/maildrop" | head -1)
assert_match "$qfile" '^[0-9A-F]{13}$' "the maildrop file of the message"
# the lock a requested runner holds while it runs, held here instead
as "$SYS" flock "$SPOOL/request.lock" sleep 3 &
holder=$!
sleep 0.5
assert_exit 0 as "$ATK" "$SM" -q
sleep 1.5
assert_eq "yes" "$([ -e "$SPOOL/maildrop/$qfile" ] && echo yes || echo no)" \
    "the message still in the maildrop while a requested run holds the lock"
wait "$holder"
assert_exit 0 as "$ATK" "$SM" -q
wait_for 20 gone_file "$SPOOL/maildrop/$qfile"
assert_eq "no" "$([ -e "$SPOOL/maildrop/$qfile" ] && echo yes || echo no)" \
    "the message still in the maildrop after the next -q"

section "a spool that cannot be used: exit 75 and the reason"
printf 'spool_directory = "%s"\n' "$P/nonexistent" >"$P/missing.conf"
run "$QR" -C "$P/missing.conf" run
assert_eq 75 "$(last_rc)" "queuerun's exit status with a missing spool"
assert_contains "$(last_err)" "$P/nonexistent" "queuerun's complaint"
run "$SM" -C "$P/missing.conf" -bp
assert_eq 75 "$(last_rc)" "mailq's exit status with a missing spool"
assert_contains "$(last_err)" "$P/nonexistent" "mailq's complaint"
mkdir -m 0770 "$P/open-spool"
printf 'spool_directory = "%s"\n' "$P/open-spool" >"$P/open.conf"
run "$QR" -C "$P/open.conf" run
assert_eq 75 "$(last_rc)" "queuerun's exit status with a group-writable spool"
assert_contains "$(last_err)" "writable by group or others" "queuerun's complaint"

finish
