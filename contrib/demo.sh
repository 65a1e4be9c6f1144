#!/bin/sh
# NAME
#	demo.sh - mxlane end to end, in a scratch directory (make demo)
# SYNOPSIS
#	sh contrib/demo.sh
# DESCRIPTION
#	Runs the built programs the way a host uses them, on the default
#	settings except for where the spool, the log and the aliases live
#	(a scratch directory, so nothing on the host is touched and no root
#	is needed):
#
#	  1. newaliases (sendmail -bi) compiles a small aliases file;
#	  2. a message with recipients from its header (sendmail -t -i, as
#	     PHP's mail() sends), with a Bcc that must not be stored;
#	  3. a message with recipients as arguments after -- (as CiviCRM's
#	     PEAR Mail sends), one of them an alias, on the bulk lane;
#	  4. a message over SMTP on standard input (sendmail -bs, as Symfony
#	     Mailer sends), with DSN parameters and 8-bit text;
#	  5. the queue, as mailq shows it (sendmail -bp);
#	  6. one message as stored (queuerun show);
#	  7. the log.
#
#	Each step checks its result; the first one that fails stops the
#	demo with a non-zero exit status. The scratch directory is removed
#	at the end (kept when MXL_DEMO_KEEP=1).
# ENVIRONMENT
#	MXL_BUILD	build tree holding sendmail/sendmail (default: the
#			source tree, where 'make' leaves the programs)
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MXL_BUILD:-$src}
SENDMAIL=$build/sendmail/sendmail
QUEUERUN=$build/queuerun/queuerun

for p in "$SENDMAIL" "$QUEUERUN"; do
	if [ ! -x "$p" ]; then
		echo "demo: $p is missing: run 'make' first" >&2
		exit 1
	fi
done

# Only this demo's own configuration counts.
unset MXLANE_CONFIG
export LC_ALL=C.UTF-8

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mxlane-demo.XXXXXX")
finish() {
	rc=$?
	if [ "${MXL_DEMO_KEEP:-0}" = 1 ]; then
		echo "demo: kept $scratch"
	else
		rm -rf "$scratch"
	fi
	if [ "$rc" -ne 0 ]; then
		echo "demo: FAILED (exit status $rc)" >&2
	fi
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

conf=$scratch/mxlane.conf
spool=$scratch/spool
log=$scratch/mxlane.log
aliases=$scratch/aliases
out=$scratch/out

step() {
	printf '\n==> %s\n' "$*"
}

# show CMD...: prints the command as typed (on the demo's own standard
# output, even when CMD's output is redirected), then runs it.
exec 3>&1
show() {
	printf '$ %s\n' "$*" | sed "s|$build/sendmail/|./sendmail/|;
	    s|$build/queuerun/|./queuerun/|; s|$scratch|\$DEMO|g" >&3
	"$@"
}

die() {
	echo "demo: $*" >&2
	exit 1
}

mkdir "$spool"
chmod 02770 "$spool"
cat >"$conf" <<EOF
# Defaults, except where the spool, the log and the aliases live.
spool_directory = "$spool"
log_file        = "$log"
alias_maps      = "$aliases"
EOF
cat >"$aliases" <<'EOF'
# The demo's /etc/aliases.
postmaster: root
root:       admin@example.org
webmaster:  alice@example.com,
            ops@example.net
EOF

printf "mxlane demo: scratch directory \$DEMO = %s\n" "$scratch"
printf "configuration (\$DEMO/mxlane.conf):\n"
sed 's/^/    /' "$conf"

# ---------------------------------------------------------------------
step "1. newaliases: compile the aliases file into the spool"
show "$SENDMAIL" -C "$conf" -bi || die "newaliases failed"

# ---------------------------------------------------------------------
step "2. sendmail -t -i: recipients from the header, as PHP's mail() sends"
cat >"$scratch/msg1" <<'EOF'
From: Web Shop <shop@example.org>
To: Alice <alice@example.com>, "Bob B." <bob@example.net>
Cc: carol@example.org
Bcc: archive@example.org
Subject: Your order 1001

Thank you for your order.
EOF
sed 's/^/    | /' "$scratch/msg1"
show "$SENDMAIL" -C "$conf" -t -i <"$scratch/msg1" ||
    die "sendmail -t -i failed"
echo "exit status 0: queued"

# ---------------------------------------------------------------------
step "3. sendmail -i -f ... -- rcpt...: recipients as arguments, bulk lane"
cat >"$scratch/msg2" <<'EOF'
From: Newsletter <news@lists.example.org>
To: Friends of Example <news@lists.example.org>
Subject: November newsletter

Hello, this is the newsletter.
EOF
sed 's/^/    | /' "$scratch/msg2"
show "$SENDMAIL" -C "$conf" -i -fbounces@lists.example.org -O Lane=bulk \
    -- dave@example.com webmaster <"$scratch/msg2" ||
    die "sendmail with recipients as arguments failed"
echo "exit status 0: queued ('webmaster' expands to two addresses)"

# ---------------------------------------------------------------------
step "4. sendmail -bs: an SMTP conversation on standard input and output"
printf '%s\r\n' \
    'EHLO app.example.org' \
    'MAIL FROM:<alerts@example.org> BODY=8BITMIME' \
    'RCPT TO:<oncall@example.com> NOTIFY=FAILURE,DELAY' \
    'DATA' \
    'From: Alerts <alerts@example.org>' \
    'To: oncall@example.com' \
    'Subject: disk usage' \
    '' \
    'Grüße: /var is 91% full.' \
    '.' \
    'QUIT' >"$scratch/session"
sed 's/\r$//; s/^/    > /' "$scratch/session"
show "$SENDMAIL" -C "$conf" -bs <"$scratch/session" >"$out" ||
    die "sendmail -bs failed"
sed 's/\r$//; s/^/    < /' "$out"
bs_id=$(sed -n 's/^250 .*queued as \([0-9A-F]\{13\}\).*/\1/p' "$out" |
    head -n 1)
[ -n "$bs_id" ] || die "no 'queued as QUEUEID' reply to the final dot"

# ---------------------------------------------------------------------
step "5. mailq (sendmail -bp): the queue"
show "$SENDMAIL" -C "$conf" -bp >"$scratch/out.q" || die "mailq failed"
cat "$scratch/out.q"
grep -q '^-- .* in 3 Requests\.$' "$scratch/out.q" ||
    die "mailq does not list the 3 messages"
grep -q "^$bs_id" "$scratch/out.q" || die "mailq does not list $bs_id"

# ---------------------------------------------------------------------
step "6. queuerun show $bs_id: one message as stored and as it will be sent"
show "$QUEUERUN" -C "$conf" show "$bs_id" >"$out" ||
    die "queuerun show failed"
cat "$out"
grep -q "^recipient: oncall@example.com" "$out" ||
    die "the -bs recipient is not in the envelope"

# The Bcc of step 2's message must be in its envelope, not in its
# content. mailq lists the oldest message first: that is step 2's.
id1=$(sed -n 's/^\([0-9A-F]\{13\}\).*/\1/p' "$scratch/out.q" | head -n 1)
[ -n "$id1" ] || die "the -t message is not in the queue"
"$QUEUERUN" -C "$conf" show "$id1" >"$out" || die "queuerun show $id1 failed"
grep -q '^recipient: archive@example.org' "$out" ||
    die "the Bcc recipient of $id1 is missing from the envelope"
if sed -n '/^\*\*\* MESSAGE CONTENTS/,$p' "$out" | grep -qi '^Bcc:'; then
	die "the Bcc: header of $id1 was stored"
fi
echo "(checked: $id1 has archive@example.org in its envelope and no Bcc: header)"

# ---------------------------------------------------------------------
step "7. the log (\$DEMO/mxlane.log; syslog's mail facility by default)"
[ -s "$log" ] || die "nothing was logged in $log"
cat "$log"

printf '\nmxlane demo: all steps passed.\n'
