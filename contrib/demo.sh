#!/bin/sh
# NAME
#	demo.sh - mxlane end to end on loopback: submit, queue, deliver
#	(make demo)
# SYNOPSIS
#	sh contrib/demo.sh
# DESCRIPTION
#	Runs the built programs the way a host uses them, with nothing
#	leaving the machine and no root needed. In a scratch directory it
#	starts the test servers of tests/servers on 127.0.0.1, each on a
#	free port:
#
#	  - dnsserver.py, a DNS server whose zone sends example.com,
#	    example.org, example.net, gmail.com and googlemail.com to MX
#	    hosts on 127.0.0.1 (example.net's MX is named like Google's,
#	    as for a company domain hosted at Google);
#	  - smtpsink.py, the test MX, which records every message with the
#	    source address it came from and refuses local parts starting
#	    with "r550-".
#
#	The configuration points mxlane at them (resolver, smtp_port) and
#	declares what a list host would: a pool of two source addresses for
#	gmail (127.0.0.2 and 127.0.0.3, weights 3 and 1), a pool for the
#	priority lane (127.0.0.4), the default pool (127.0.0.1), a throttled
#	gmail provider and a bulk lane chosen by sender. Then:
#
#	  1. newaliases (sendmail -bi) compiles a small aliases file;
#	  2. a message with recipients from its header (sendmail -t -i, as
#	     PHP's mail() sends), with a Bcc that must not be stored;
#	  3. a newsletter with recipients as arguments after -- (as
#	     CiviCRM's PEAR Mail sends), one an alias, one refused by the MX;
#	     its sender puts it on the bulk lane;
#	  4. a message over SMTP on standard input (sendmail -bs, as Symfony
#	     Mailer sends), with DSN parameters and 8-bit text;
#	  5. the queue, as mailq shows it;
#	  6. where mail to some addresses would go (queuerun route);
#	  7. one message as stored (queuerun show);
#	  8. one queue run (queuerun run) delivers everything; the refused
#	     recipient's bounce goes back to the newsletter's sender;
#	  9. what the MX received, and from which source address;
#	 10. immediate delivery: with immediate_delivery switched on, a
#	     password reset on the priority lane reaches the MX at once,
#	     with no daemon running;
#	 11. the log, in Postfix's format, and pflogsumm's totals when
#	     pflogsumm is installed.
#
#	Each step checks its result; the first one that fails stops the
#	demo with a non-zero exit status. The servers are stopped and the
#	scratch directory removed at the end (kept when MXL_DEMO_KEEP=1).
# ENVIRONMENT
#	MXL_BUILD	build tree holding sendmail/sendmail and
#			queuerun/queuerun (default: the source tree, where
#			'make' leaves the programs)
#	MXL_PYTHON	the Python 3 with dnslib (default /usr/bin/python3,
#			Debian's, with the package python3-dnslib)
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${MXL_BUILD:-$src}
SENDMAIL=$build/sendmail/sendmail
QUEUERUN=$build/queuerun/queuerun
PYTHON=${MXL_PYTHON:-/usr/bin/python3}
SERVERS=$src/tests/servers

for p in "$SENDMAIL" "$QUEUERUN"; do
	if [ ! -x "$p" ]; then
		echo "demo: $p is missing: run 'make' first" >&2
		exit 1
	fi
done
if ! "$PYTHON" -c 'import dnslib' 2>/dev/null; then
	echo "demo: the test DNS server needs $PYTHON with dnslib:" \
	    "sudo apt-get install python3 python3-dnslib" >&2
	exit 1
fi

# Only this demo's own configuration counts.
unset MXLANE_CONFIG
export LC_ALL=C.UTF-8

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mxlane-demo.XXXXXX")
pids=
finish() {
	rc=$?
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $pids; do
		wait "$p" 2>/dev/null || true
	done
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
mx=$scratch/mx

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

# wait_for TENTHS CMD...: true as soon as CMD succeeds, tried every 0.1 s
wait_for() {
	n=$1
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# ---------------------------------------------------------------------
# The test servers, on loopback only, each on a port the kernel picks.
mkdir "$mx"
cat >"$mx/zone" <<'EOF'
example.com                MX 10 mx.example.com
mx.example.com             A  127.0.0.1
example.org                MX 10 mx.example.org
lists.example.org          MX 10 mx.example.org
web1.example.org           MX 10 mx.example.org
mx.example.org             A  127.0.0.1
gmail.com                  MX 5  gmail-smtp-in.l.google.com
googlemail.com             MX 5  gmail-smtp-in.l.google.com
gmail-smtp-in.l.google.com A  127.0.0.1
example.net                MX 10 aspmx.l.google.com
aspmx.l.google.com         A  127.0.0.1
EOF
timeout 300 "$PYTHON" "$SERVERS/dnsserver.py" --zone "$mx/zone" \
    --address 127.0.0.1 --port 0 --port-file "$mx/dns.port" \
    >/dev/null 2>"$mx/dns.err" &
pids="$pids $!"
"$PYTHON" "$SERVERS/smtpsink.py" --listen 127.0.0.1:0 \
    --hostname mx.demo.test --log "$mx/sink.log" --save-dir "$mx/mail" \
    --ready-file "$mx/sink.ready" --watch-pid $$ --max-lifetime 300 \
    2>"$mx/sink.err" &
pids="$pids $!"
wait_for 100 test -s "$mx/dns.port" ||
    die "the test DNS server did not start: $(cat "$mx/dns.err")"
wait_for 100 test -s "$mx/sink.ready" ||
    die "the test MX did not start: $(cat "$mx/sink.err")"
dns_port=$(cat "$mx/dns.port")
mx_port=$(sed -n 's/^listen=127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$mx/sink.ready")
[ -n "$mx_port" ] || die "no port in $mx/sink.ready"

mkdir "$spool"
chmod 0700 "$spool"
cat >"$conf" <<EOF
# Where the demo keeps things.
spool_directory = "$spool"
log_file        = "$log"
alias_maps      = "$aliases"
queuerun_path   = "$QUEUERUN"
myhostname      = "web1.example.org"

# The test DNS server and the test MX, on loopback.
resolver  = "127.0.0.1:$dns_port"
smtp_port = $mx_port

# Steps 2 to 9 show mail waiting in the queue; step 10 turns this on.
immediate_delivery = false

# Source addresses: gmail's own two (weights 3:1), one for the priority
# lane, and the default for everything else.
pool gmail {
	source "127.0.0.2" { helo = "gm1.example.org" weight = 3 }
	source "127.0.0.3" { helo = "gm2.example.org" weight = 1 }
}
pool transactional { source "127.0.0.4" { helo = "tx.example.org" } }
pool default { source "127.0.0.1" { } }

provider gmail {
	domains = { "gmail.com", "googlemail.com" }
	mx      = { "*.google.com" }
	pool    = "gmail"
	concurrency = 2
	rate    = "20/s"
}

lane priority { pool = "transactional" }
lane bulk { match_sender = { "*@lists.example.org" } }
EOF
cat >"$aliases" <<'EOF'
# The demo's /etc/aliases.
postmaster: root
root:       admin@example.org
webmaster:  alice@example.com,
            ops@example.net
EOF

printf "mxlane demo: scratch directory \$DEMO = %s\n" "$scratch"
printf "test DNS server on 127.0.0.1:%s, test MX on 127.0.0.1:%s\n" \
    "$dns_port" "$mx_port"
printf "configuration (\$DEMO/mxlane.conf):\n"
sed "s|$scratch|\$DEMO|g; s/^/    /" "$conf"

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
step "3. sendmail -i -f ... -- rcpt...: a newsletter, recipients as arguments"
cat >"$scratch/msg2" <<'EOF'
From: Newsletter <news@lists.example.org>
To: Friends of Example <news@lists.example.org>
Subject: November newsletter

Hello, this is the newsletter.
EOF
sed 's/^/    | /' "$scratch/msg2"
show "$SENDMAIL" -C "$conf" -i -fbounces@lists.example.org -- \
    dave@gmail.com erin@googlemail.com webmaster r550-gone@example.com \
    <"$scratch/msg2" || die "sendmail with recipients as arguments failed"
echo "exit status 0: queued ('webmaster' expands to two addresses; the"
echo "sender matches the bulk lane's rule *@lists.example.org)"

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
step "6. queuerun route: where mail to an address goes, and why"
show "$QUEUERUN" -C "$conf" route --sender bounces@lists.example.org \
    dave@gmail.com ops@example.net alice@example.com >"$out" ||
    die "queuerun route failed"
cat "$out"
grep -q 'provider: gmail (MX aspmx.l.google.com matches \*.google.com)' \
    "$out" || die "example.net was not routed to gmail by its MX"

# ---------------------------------------------------------------------
step "7. queuerun show $bs_id: one message as stored and as it will be sent"
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
step "8. queuerun run: one queue run delivers to the MX hosts"
show "$QUEUERUN" -C "$conf" run || die "queuerun run failed"
show "$SENDMAIL" -C "$conf" -bp >"$out" || die "mailq failed"
cat "$out"
grep -q '^Mail queue is empty$' "$out" ||
    die "the queue is not empty after the run"

# ---------------------------------------------------------------------
step "9. what the test MX received, and from which source address"
cat >"$mx/report.py" <<'PY'
import json, sys
seen = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] != "message":
        continue
    seen += 1
    subject = ""
    with open(r["file"], "rb") as f:
        for h in f.read().split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if h.lower().startswith(b"subject:"):
                subject = h[8:].strip().decode("utf-8", "replace")
    print("from %-9s helo %-16s <%s> -> %s" % (
        r["peer_ip"], r["helo"], r["mail_from"], ", ".join(r["rcpt_tos"])))
    print("%9s %s" % ("", subject))
print("%d messages" % seen)
PY
"$PYTHON" "$mx/report.py" "$mx/sink.log" >"$out"
cat "$out"
# Every recipient arrived except the refused one; the bounce went back.
for a in alice@example.com bob@example.net carol@example.org \
    archive@example.org dave@gmail.com erin@googlemail.com \
    ops@example.net oncall@example.com bounces@lists.example.org; do
	grep -q "$a" "$out" || die "nothing arrived for $a"
done
if grep -q 'r550-gone@example.com' "$out"; then
	die "the refused recipient shows as delivered"
fi
grep -q '^from 127.0.0.[23] .*dave@gmail.com' "$out" ||
    die "gmail mail did not come from gmail's pool (127.0.0.2, .3)"
grep -q '^from 127.0.0.4 .*alice@example.com' "$out" ||
    die "priority-lane mail did not come from the transactional pool"
grep -q '^from 127.0.0.1 .*alice@example.com' "$out" ||
    die "bulk mail to example.com did not come from the default pool"
grep -q 'Undelivered Mail Returned to Sender' "$out" ||
    die "no bounce for r550-gone@example.com"
echo "(checked: gmail and Google-hosted example.net from 127.0.0.2/.3, the"
echo "priority lane from 127.0.0.4, other bulk mail from 127.0.0.1, and a"
echo "bounce to bounces@lists.example.org for the refused recipient)"

# ---------------------------------------------------------------------
step "10. immediate delivery: a password reset, with no queue runner running"
sed 's/^immediate_delivery = false$/immediate_delivery = true/' "$conf" \
    >"$conf.new" && mv "$conf.new" "$conf"
grep -q '^immediate_delivery = true$' "$conf" ||
    die "could not switch immediate_delivery on"
echo "(immediate_delivery = true in \$DEMO/mxlane.conf)"
before=$(grep -c '"type": *"message"' "$mx/sink.log" || true)
start=$(date +%s%N)
printf 'From: Web Shop <shop@example.org>\nTo: frank@example.com\nSubject: Reset your password\n\nhttps://shop.example.org/reset/abc123\n' |
    show "$SENDMAIL" -C "$conf" -t -i || die "sendmail failed"
arrived() {
	[ "$(grep -c '"type": *"message"' "$mx/sink.log")" -gt "$before" ]
}
wait_for 50 arrived || die "the password reset did not reach the MX in 5 s"
end=$(date +%s%N)
echo "reached the test MX $(( (end - start) / 1000000 )) ms after sendmail started"
wait_for 50 sh -c "'$SENDMAIL' -C '$conf' -bp | grep -q '^Mail queue is empty'" ||
    die "the password reset is still queued"

# ---------------------------------------------------------------------
step "11. the log (\$DEMO/mxlane.log; syslog's mail facility by default)"
[ -s "$log" ] || die "nothing was logged in $log"
sed "s|$scratch|\$DEMO|g" "$log"
grep -q 'status=sent' "$log" || die "no status=sent line in the log"
if command -v pflogsumm >/dev/null 2>&1; then
	echo
	show pflogsumm --syslog-name=mxlane "$log" >"$out" 2>&1 ||
	    die "pflogsumm failed"
	sed -n '/^Grand Totals/,/^ *[0-9]* *recipient hosts/p' "$out"
fi

printf '\nmxlane demo: all steps passed.\n'
