# NAME
#	clients.sh - real mail clients submit through the built sendmail
# DESCRIPTION
#	Each client from its Debian package runs unchanged, pointed at
#	$MXL_BUILD/sendmail/sendmail the way an administrator would point it
#	at /usr/sbin/sendmail, and each test checks what landed in the spool
#	(queuerun show): the exact envelope sender and recipients and the
#	headers. Every client gets a fresh spool, so "exactly one message"
#	is meaningful.
#
#	The argv and standard input each client produces were checked with a
#	capture script when this test was written; they are noted at each
#	case so a failure can be read without re-running the client:
#
#	PHP mail() ........... sendmail_path "-t -i" [+ 5th arg "-fADDR"];
#	                       CRLF between headers, LF in the body
#	PHPMailer ............ -oi -fADDR -t
#	Symfony -bs .......... -bs, then HELO/MAIL/RCPT/DATA/QUIT, dot-stuffed
#	Symfony -t ........... "-t" is dropped when the envelope has
#	                       recipients: -i -fADDR -- rcpt...
#	PEAR Mail_sendmail ... -i -fADDR -- rcpt... (Cc/Bcc kept as headers)
#	bsd-mailx ............ -i -t (no From:, Bcc: in the headers)
#	mutt ................. -oem -oi [-f ADDR] -- rcpt...
#	git send-email ....... -i rcpt... / -f ADDR -i rcpt...
#
#	The two cron daemons hard-code /usr/sbin/sendmail and only run jobs
#	on minute boundaries, so their calls are replayed here with the exact
#	argv and the exact header layout their sources write (Debian cron
#	3.0pl1 and cronie 1.6); that is the one place a client is imitated.

. "$(dirname "$0")/../lib.sh"

ME=$(id -un)

section "tools"
need_cmd php mutt bsd-mailx git
need_file /usr/share/php/libphp-phpmailer/src/PHPMailer.php \
    /usr/share/php/Symfony/Component/Mailer/Transport/SendmailTransport.php \
    /usr/share/php/Mail/sendmail.php /usr/share/php/PEAR.php
[ -x "$SENDMAIL" ] || fail "$SENDMAIL is not built"
[ -x "$QUEUERUN" ] || fail "$QUEUERUN is not built"

mkdir -p "$T/php"

# ---------------------------------------------------------------- PHP mail()

cat >"$T/php/mail.php" <<'EOF'
<?php
// argv: [fifth-parameter]
$to = "Bob <bob@example.com>, carol@example.net";
$headers = "From: Alice <alice@example.org>\r\n" .
    "Cc: dave@example.com\r\n" .
    "Bcc: eve@example.com\r\n" .
    "X-Mailer: PHP/mxlane-test";
$ok = isset($argv[1])
    ? mail($to, "Hello from PHP", "line1\nline2\n", $headers, $argv[1])
    : mail($to, "Hello from PHP", "line1\nline2\n", $headers);
exit($ok ? 0 : 1);
EOF

section "PHP mail(), sendmail_path = sendmail -t -i"
setup php_mail
assert_exit 0 php -d "sendmail_path=$SENDMAIL -t -i" "$T/php/mail.php"
ID=$(only_id)
assert_sender "$ID" "$ME@example.org"
assert_rcpts "$ID" bob@example.com carol@example.net dave@example.com eve@example.com
assert_hdr "$ID" From "Alice <alice@example.org>"
assert_hdr "$ID" To "Bob <bob@example.com>, carol@example.net"
assert_hdr "$ID" Cc "dave@example.com"
assert_hdr "$ID" Subject "Hello from PHP"
assert_hdr "$ID" X-Mailer "PHP/mxlane-test"
assert_no_hdr "$ID" Bcc
assert_generated_headers "$ID"
assert_eq "$(printf 'line1\nline2')" "$(body "$ID")" "body of PHP mail()"
assert_eq 0 "$(content "$ID" | tr -cd '\r' | wc -c | tr -d ' ')" \
    "stray CRs in the content PHP wrote with mixed line ends"

section "PHP mail() with -f as the fifth argument"
setup php_mail_f
assert_exit 0 php -d "sendmail_path=$SENDMAIL -t -i" "$T/php/mail.php" \
    "-fbounce@example.org"
ID=$(only_id)
assert_sender "$ID" bounce@example.org
assert_rcpts "$ID" bob@example.com carol@example.net dave@example.com eve@example.com
assert_hdr "$ID" From "Alice <alice@example.org>"
assert_no_hdr "$ID" Bcc

section "PHP mail() returns false when sendmail refuses (no recipient)"
setup php_mail_fail
cat >"$T/php/mail_norcpt.php" <<'EOF'
<?php
// -t with no To/Cc/Bcc at all: sendmail must refuse, mail() must say so
$ok = mail("", "no recipient", "body\n", "From: alice@example.org");
exit($ok ? 0 : 3);
EOF
assert_exit 3 php -d "sendmail_path=$SENDMAIL -t -i" "$T/php/mail_norcpt.php"
assert_queue_empty "after a refused PHP mail()"

section "PHP mail() returns false when the spool cannot be written (exit 75)"
setup php_mail_tempfail
: >"$W/not-a-directory"
write_config "$CONF" "$W/not-a-directory/spool" "$ALIASES" "$LOGFILE"
cat >"$T/php/mail_simple.php" <<'EOF'
<?php
$ok = mail("bob@example.com", "tempfail", "body\n", "From: alice@example.org");
exit($ok ? 0 : 3);
EOF
assert_exit 3 php -d "sendmail_path=$SENDMAIL -t -i" "$T/php/mail_simple.php"

# ---------------------------------------------------------------- PHPMailer

cat >"$T/php/phpmailer.php" <<'EOF'
<?php
// argv: sendmail-path
require '/usr/share/php/libphp-phpmailer/autoload.php';
use PHPMailer\PHPMailer\PHPMailer;
$m = new PHPMailer(true);
$m->isSendmail();
$m->Sendmail = $argv[1];
$m->CharSet = 'UTF-8';
$m->setFrom('alice@example.org', 'Alice Sender');
$m->Sender = 'bounce@example.org';
$m->addAddress('bob@example.com', 'Bob');
$m->addCC('carol@example.net');
$m->addBCC('eve@example.com');
$m->MessageID = '<phpmailer-1@client.example.org>';
$m->MessageDate = 'Wed, 25 Nov 2026 10:00:00 +0000';
$m->Subject = 'PHPMailer test';
$m->Body = "Hello from PHPMailer\n";
$m->send();
EOF

section "PHPMailer isSendmail() (-oi -fADDR -t)"
setup phpmailer
assert_exit 0 php "$T/php/phpmailer.php" "$SENDMAIL"
ID=$(only_id)
assert_sender "$ID" bounce@example.org
assert_rcpts "$ID" bob@example.com carol@example.net eve@example.com
assert_hdr "$ID" From "Alice Sender <alice@example.org>"
assert_hdr "$ID" To "Bob <bob@example.com>"
assert_hdr "$ID" Cc "carol@example.net"
assert_no_hdr "$ID" Bcc
# the client's own Date and Message-ID are kept, not doubled
assert_hdr "$ID" Message-ID "<phpmailer-1@client.example.org>"
assert_hdr "$ID" Date "Wed, 25 Nov 2026 10:00:00 +0000"
assert_eq "Hello from PHPMailer" "$(body "$ID")" "PHPMailer body"

# ---------------------------------------------------------------- Symfony

cat >"$T/php/symfony.php" <<'EOF'
<?php
// argv: transport-command
require '/usr/share/php/Symfony/Component/Mailer/autoload.php';
require '/usr/share/php/Symfony/Component/Mime/autoload.php';
use Symfony\Component\Mailer\Mailer;
use Symfony\Component\Mailer\Transport\SendmailTransport;
use Symfony\Component\Mime\Email;
$mailer = new Mailer(new SendmailTransport($argv[1]));
$e = (new Email())
    ->from('Alice <alice@example.org>')
    ->to('bob@example.com')
    ->cc('carol@example.net')
    ->bcc('eve@example.com')
    ->subject('Symfony test')
    ->text("Hello from Symfony\n.\n..two dots\nafter dot\n");
$mailer->send($e);
EOF

section "Symfony Mailer SendmailTransport, -bs (the default)"
setup symfony_bs
assert_exit 0 php "$T/php/symfony.php" "$SENDMAIL -bs"
ID=$(only_id)
assert_sender "$ID" alice@example.org
assert_rcpts "$ID" bob@example.com carol@example.net eve@example.com
assert_hdr "$ID" From "Alice <alice@example.org>"
assert_hdr "$ID" To "bob@example.com"
assert_hdr "$ID" Cc "carol@example.net"
assert_hdr "$ID" Subject "Symfony test"
assert_no_hdr "$ID" Bcc
assert_eq 1 "$(hdr_count "$ID" Message-ID)" "number of Message-ID: headers"
# SMTP dot-stuffing undone: a lone "." and "..two dots" come back as sent
B=$(body "$ID")
assert_contains "$B" "$(printf 'Hello from Symfony\n.\n..two dots\nafter dot')" \
    "Symfony -bs body (dot-stuffing must be undone)"

section "Symfony Mailer SendmailTransport, -t -i"
setup symfony_t
assert_exit 0 php "$T/php/symfony.php" "$SENDMAIL -t -i"
ID=$(only_id)
assert_sender "$ID" alice@example.org
assert_rcpts "$ID" bob@example.com carol@example.net eve@example.com
assert_hdr "$ID" From "Alice <alice@example.org>"
assert_no_hdr "$ID" Bcc
assert_contains "$(body "$ID")" "$(printf 'Hello from Symfony\n.\n..two dots\nafter dot')" \
    "Symfony -t body"

# ---------------------------------------------------------------- PEAR Mail

cat >"$T/php/pear.php" <<'EOF'
<?php
// argv: sendmail-path. CiviCRM's form: Mail::factory('sendmail') with
// sendmail_args "-i", every recipient (To, Cc, Bcc) on the command line,
// Cc and Bcc also left in the headers, Return-Path as the VERP sender.
require_once 'Mail.php';
$m = Mail::factory('sendmail', ['sendmail_path' => $argv[1], 'sendmail_args' => '-i']);
$headers = [
    'From' => 'CiviCRM Mailer <civi@example.org>',
    'To' => 'Bob <bob@example.com>',
    'Cc' => 'carol@example.net',
    'Bcc' => 'eve@example.com',
    'Subject' => 'Civi mailing',
    'Return-Path' => 'b.1.2.abc@example.org',
    'Message-ID' => '<civi-1@example.org>',
];
$r = $m->send(['bob@example.com', 'carol@example.net', 'eve@example.com'],
    $headers, "Dear Bob,\n\nnews.\n");
if ($r !== true) { fwrite(STDERR, $r->getMessage() . "\n"); exit(1); }
EOF

section "PEAR Mail_sendmail as CiviCRM uses it (-i -fADDR -- rcpt...)"
setup pear_mail
assert_exit 0 php "$T/php/pear.php" "$SENDMAIL"
ID=$(only_id)
assert_sender "$ID" b.1.2.abc@example.org
assert_rcpts "$ID" bob@example.com carol@example.net eve@example.com
assert_hdr "$ID" From "CiviCRM Mailer <civi@example.org>"
assert_hdr "$ID" To "Bob <bob@example.com>"
assert_hdr "$ID" Cc "carol@example.net"
assert_hdr "$ID" Message-ID "<civi-1@example.org>"
# the client left Bcc in the headers; it must not be stored
assert_no_hdr "$ID" Bcc
assert_not_contains "$(content "$ID")" "eve@example.com" "stored content"
assert_eq "$(printf 'Dear Bob,\n\nnews.')" "$(body "$ID")" "PEAR body"

# ---------------------------------------------------------------- bsd-mailx

section "bsd-mailx with 'set sendmail' in MAILRC (-i -t)"
setup mailx
printf 'set sendmail=%s\n' "$SENDMAIL" >"$T/mailrc"
printf 'mailx body\nsecond line\n' |
    MAILRC=$T/mailrc assert_exit 0 bsd-mailx -s "mailx subject" \
    -c carol@example.net -b eve@example.com bob@example.com
ID=$(only_id)
assert_sender "$ID" "$ME@example.org"
assert_rcpts "$ID" bob@example.com carol@example.net eve@example.com
assert_hdr "$ID" To "bob@example.com"
assert_hdr "$ID" Cc "carol@example.net"
assert_hdr "$ID" Subject "mailx subject"
assert_no_hdr "$ID" Bcc
# mailx writes no From:, so sendmail generates one for the caller
assert_eq 1 "$(hdr_count "$ID" From)" "number of From: headers"
assert_match "$(hdr "$ID" From)" "(^|<)$ME@example\\.org>?\$" "generated From:"
assert_generated_headers "$ID"
assert_eq "$(printf 'mailx body\nsecond line')" "$(body "$ID")" "mailx body"

# ---------------------------------------------------------------- mutt

write_muttrc() {
	cat >"$T/muttrc" <<EOF
set sendmail="$SENDMAIL -oem -oi"
set from="Alice <alice@example.org>"
set use_from=yes
set charset="utf-8"
set send_charset="utf-8"
set record=""
set copy=no
set hostname=client.example.org
set folder=$HOME/Mail
set spoolfile=$HOME/mbox
EOF
}

section "mutt with set sendmail (-oem -oi -- rcpt...)"
setup mutt
write_muttrc
printf 'mutt body \303\244\303\266\303\274\n' |
    assert_exit 0 mutt -n -F "$T/muttrc" -s "mutt subject" \
    -c carol@example.net -b eve@example.com -- bob@example.com
ID=$(only_id)
assert_sender "$ID" "$ME@example.org"
assert_rcpts "$ID" bob@example.com carol@example.net eve@example.com
assert_hdr "$ID" From "Alice <alice@example.org>"
assert_hdr "$ID" To "bob@example.com"
assert_hdr "$ID" Cc "carol@example.net"
assert_hdr "$ID" Subject "mutt subject"
assert_no_hdr "$ID" Bcc
assert_eq 1 "$(hdr_count "$ID" Message-ID)" "number of Message-ID: headers"
assert_match "$(hdr "$ID" Message-ID)" '@client\.example\.org>$' "mutt's own Message-ID"
assert_eq "$(printf 'mutt body \303\244\303\266\303\274')" "$(body "$ID")" "mutt body"

section "mutt with use_envelope_from (-oem -oi -f ADDR -- rcpt)"
setup mutt_f
write_muttrc
printf 'hello\n' | assert_exit 0 mutt -n -F "$T/muttrc" \
    -e 'set use_envelope_from=yes' -s "mutt -f" -- bob@example.com
ID=$(only_id)
assert_sender "$ID" alice@example.org
assert_rcpts "$ID" bob@example.com

# ---------------------------------------------------------------- git

section "git send-email --sendmail-cmd (-i rcpt...)"
setup git_email
R=$T/repo
rm -rf "$R"
git init -q "$R"
git -C "$R" config user.name "Alice Dev"
git -C "$R" config user.email alice@example.org
printf 'hello\n' >"$R/hello.txt"
git -C "$R" add hello.txt
git -C "$R" commit -q -m "Add hello" -m "Grüße aus Köln, naïve café."
rm -rf "$T/patches"
assert_exit 0 git -C "$R" format-patch -q -1 -o "$T/patches"
PATCH=$(ls "$T"/patches/*.patch 2>/dev/null | head -1)
assert_ne "" "$PATCH" "format-patch output"
assert_exit 0 git -C "$R" send-email --sendmail-cmd="$SENDMAIL" \
    --from="Alice Dev <alice@example.org>" --to=bob@example.com \
    --cc=carol@example.net --bcc=eve@example.com \
    --confirm=never --suppress-cc=all --no-validate "$PATCH"
ID=$(only_id)
assert_sender "$ID" "$ME@example.org"
assert_rcpts "$ID" bob@example.com carol@example.net eve@example.com
assert_hdr "$ID" From "Alice Dev <alice@example.org>"
assert_hdr "$ID" To "bob@example.com"
assert_hdr "$ID" Cc "carol@example.net"
assert_no_hdr "$ID" Bcc
# git writes "Message-Id:"; a second, generated one would be a bug
assert_eq 1 "$(hdr_count "$ID" Message-ID)" "number of Message-ID: headers"
assert_match "$(hdr "$ID" Message-ID)" '@example\.org>$' "git's Message-Id"
assert_match "$(hdr "$ID" Subject)" '^\[PATCH\] ' "git's Subject"
B=$(body "$ID")
assert_contains "$B" "Grüße aus Köln, naïve café." "8-bit patch body"
assert_contains "$B" "+hello" "patch body"

section "git send-email --smtp-server=PATH --envelope-sender (-f ADDR -i rcpt)"
setup git_email_f
assert_exit 0 git -C "$R" send-email --smtp-server="$SENDMAIL" \
    --envelope-sender=bounce@example.org \
    --from="Alice Dev <alice@example.org>" --to=bob@example.com \
    --confirm=never --suppress-cc=all --no-validate "$PATCH"
ID=$(only_id)
assert_sender "$ID" bounce@example.org
assert_rcpts "$ID" bob@example.com

# ---------------------------------------------------------------- cron

# Debian cron 3.0pl1: popen("/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME
# -oem USER") and this header layout (charset from the locale), then the
# job's output verbatim.
section "Debian cron (replayed): -FCronDaemon -i -B8BITMIME -oem root"
setup debian_cron
{
	printf 'From: root (Cron Daemon)\n'
	printf 'To: root\n'
	printf 'Subject: Cron <root@client> /usr/local/bin/backup\n'
	printf 'MIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=UTF-8\n'
	printf 'Content-Transfer-Encoding: 8bit\n'
	printf 'X-Cron-Env: <SHELL=/bin/sh>\n'
	printf 'X-Cron-Env: <HOME=/root>\n'
	printf 'X-Cron-Env: <PATH=/usr/bin:/bin>\n'
	printf 'X-Cron-Env: <LOGNAME=root>\n'
	printf '\n'
	printf 'backup: 3 files, 12 kB \342\200\224 ok\n'
	printf '.\n'
	printf 'still output after a lone dot\n'
} | assert_exit 0 "$SENDMAIL" -FCronDaemon -i -B8BITMIME -oem root
ID=$(only_id)
assert_sender "$ID" "$ME@example.org"
assert_rcpts "$ID" root@example.org
assert_eq 8bitmime "$(env_get "$ID" body)" "body type from -B8BITMIME"
assert_hdr "$ID" Subject "Cron <root@client> /usr/local/bin/backup"
assert_eq 1 "$(hdr_count "$ID" From)" "number of From: headers"
assert_contains "$(hdr "$ID" From)" "(Cron Daemon)" "cron's From:"
assert_eq 4 "$(hdr_count "$ID" X-Cron-Env)" "X-Cron-Env: headers kept"
assert_generated_headers "$ID"
assert_eq "$(printf 'backup: 3 files, 12 kB \342\200\224 ok\n.\nstill output after a lone dot')" \
    "$(body "$ID")" "cron output with -i (a lone dot does not end it)"

# cronie 1.6: popen("/usr/sbin/sendmail -FCronDaemon -i -odi -oem -oi -t
# -f MAILFROM") where MAILFROM defaults to the job owner's login name.
cronie_message() {
	printf 'From: "(Cron Daemon)" <%s>\n' "$1"
	printf 'To: ops@example.com\n'
	printf 'Subject: Cron <root@client> run-parts /etc/cron.hourly\n'
	printf 'MIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=UTF-8\n'
	printf 'Content-Transfer-Encoding: 8bit\n'
	printf 'Auto-Submitted: auto-generated\n'
	printf 'Precedence: bulk\n'
	printf 'X-Cron-Env: <MAILTO=ops@example.com>\n'
	printf 'X-Cron-Env: <LOGNAME=root>\n'
	printf '\n'
	printf 'hourly job said something\n'
}

section "cronie (replayed): -FCronDaemon -i -odi -oem -oi -t -f root"
setup cronie
cronie_message root |
    assert_exit 0 "$SENDMAIL" -FCronDaemon -i -odi -oem -oi -t -f root
ID=$(only_id)
assert_sender "$ID" root@example.org
assert_rcpts "$ID" ops@example.com
assert_hdr "$ID" Auto-Submitted "auto-generated"
assert_eq "hourly job said something" "$(body "$ID")" "cronie body"

section "cronie form with the null sender: ... -t -f '<>'"
setup cronie_null
cronie_message root |
    assert_exit 0 "$SENDMAIL" -FCronDaemon -i -odi -oem -oi -t -f '<>'
ID=$(only_id)
assert_sender "$ID" ""
assert_rcpts "$ID" ops@example.com
assert_eq 1 "$(hdr_count "$ID" From)" "number of From: headers"

# ---------------------------------------------------------------- message handling

section "-F full name in a generated From:"
setup fullname
printf 'To: bob@example.com\nSubject: no from\n\nbody\n' |
    assert_exit 0 "$SENDMAIL" -F "Jane Q. Public" -t -i
ID=$(only_id)
F=$(hdr "$ID" From)
assert_eq 1 "$(hdr_count "$ID" From)" "number of From: headers"
assert_contains "$F" "Jane Q. Public" "generated From: with -F"
assert_contains "$F" "$ME@example.org" "generated From: with -F"
assert_sender "$ID" "$ME@example.org"

section "-f and -F together: From: built from both"
setup fullname_f
printf 'To: bob@example.com\nSubject: no from\n\nbody\n' |
    assert_exit 0 "$SENDMAIL" -F "Web Shop" -f shop@example.org -t -i
ID=$(only_id)
F=$(hdr "$ID" From)
assert_contains "$F" "Web Shop" "generated From:"
assert_contains "$F" "shop@example.org" "generated From:"
assert_sender "$ID" shop@example.org

section "8-bit and UTF-8 body byte-exact"
setup eightbit
{
	printf 'From: alice@example.org\nTo: bob@example.com\nSubject: bytes\n'
	printf 'Content-Type: text/plain; charset=UTF-8\n\n'
} >"$T/8bit.head"
{
	printf 'UTF-8: \303\251t\303\251 \342\202\254 \360\237\230\200 \346\227\245\346\234\254\n'
	printf 'Latin-1 bytes: \351\350\374\377 and \200\201\376\n'
	printf '  leading blanks, trailing blanks  \n'
	printf '\ttab\n'
	printf '..starts with two dots\n'
	printf 'From a line that looks like an mbox separator\n'
	printf '\n\n'
	printf 'after two empty lines\n'
} >"$T/8bit.body"
cat "$T/8bit.head" "$T/8bit.body" | assert_exit 0 "$SENDMAIL" -i -- bob@example.com
ID=$(only_id)
body "$ID" >"$T/8bit.got"
assert_files_equal "$T/8bit.body" "$T/8bit.got" "8-bit body"
assert_sender "$ID" "$ME@example.org"

section "CRLF input normalised (stored as CRLF, shown as LF)"
setup crlf
printf 'From: alice@example.org\r\nTo: bob@example.com\r\nSubject: crlf\r\n\r\nline one\r\nline two\nline three\r\n' |
    assert_exit 0 "$SENDMAIL" -t -i
ID=$(only_id)
content "$ID" >"$T/crlf.content"
assert_eq 0 "$(tr -cd '\r' <"$T/crlf.content" | wc -c | tr -d ' ')" \
    "CRs left in the content after CRLF normalisation"
assert_eq "$(printf 'line one\nline two\nline three')" "$(body "$ID")" "CRLF body"
assert_hdr "$ID" Subject crlf
# the stored message is all CRLF: its size is the LF form plus one CR a line
LF_BYTES=$(wc -c <"$T/crlf.content" | tr -d ' ')
LINES=$(wc -l <"$T/crlf.content" | tr -d ' ')
assert_eq $((LF_BYTES + LINES)) "$(env_get "$ID" size)" \
    "size of the stored CRLF message (LF form $LF_BYTES bytes + $LINES CRs)"

finish
