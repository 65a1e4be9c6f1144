#!/bin/bash
# NAME
#	delivery_dkim.sh - DKIM signing, verified by two independent verifiers
# DESCRIPTION
#	Keys made by `queuerun dkim keygen` (an RSA and an Ed25519 key for
#	example.org, an RSA key for the fallback domain), their records
#	published by the test DNS server as keygen printed them, messages
#	delivered by one `queuerun run` pass to the recording sink
#	(smtpsink.py --save-dir: the octets as received). Every signature is
#	checked by python3-dkim (dkimpy) and by OpenDKIM's opendkim-testmsg
#	(tests/servers/dkimverify.sh), each fetching the keys from the test
#	DNS server through its own resolver.
#
#	  keygen ................ mode 0600, no overwrite, bad sizes refused
#	  check ................. `queuerun check` reads the keys;
#	                          `check dkim` says ok / WRONG / MISSING
#	  signing ............... From: example.org: two signatures (RSA,
#	                          Ed25519), both verify with both verifiers;
#	                          the log line names dkim=DOMAIN/SELECTORS;
#	                          show says how it will be signed
#	  hard content .......... CRLF, 8-bit body, folded and 1,200-octet
#	                          header lines (a signed one without blanks),
#	                          a 1,200-octet UTF-8 body line, dot lines:
#	                          still verifies as received
#	  alignment ............. From: a subdomain is signed by its parent's
#	                          section; an unknown domain by
#	                          dkim_fallback_domain, or not at all
#	  once per message ...... two transactions of one message carry the
#	                          same signature
#	  bounces ............... the bounce (From: MAILER-DAEMON@host.
#	                          example.org) is signed by example.org
#	  tampering ............. a changed octet fails both verifiers (so
#	                          the checks above can fail)
#	  bad keys .............. missing, world-readable, 512-bit RSA and
#	                          EC keys refused with file:line by run and
#	                          check; sendmail never reads them
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/dkimverify.sh" \
    "$SENDMAIL" "$QUEUERUN"
need_cmd opendkim-testmsg unshare openssl
"$PYTHON" -c 'import dkim, nacl' 2>/dev/null && pass ||
    fail "python3-dkim and python3-nacl are needed (tests/install-deps.sh)"

IP_MX=127.0.0.161
KEYS=$T/keys
mkdir -p "$KEYS"

# ---------------------------------------------------------------- keygen
section "keygen: an RSA and an Ed25519 key for example.org, one for the fallback"
setup keygen
assert_exit 0 "$QUEUERUN" dkim keygen example.org s2026 --out "$KEYS/s2026.pem"
cp "$OUT" "$T/keygen.s2026"
assert_contains "$(cat "$T/keygen.s2026")" "s2026._domainkey.example.org. IN TXT"
assert_contains "$(cat "$T/keygen.s2026")" '"v=DKIM1; k=rsa; p=MII'
assert_exit 0 "$QUEUERUN" dkim keygen example.org ed2026 --ed25519 --out "$KEYS/ed2026.pem"
cp "$OUT" "$T/keygen.ed2026"
assert_contains "$(cat "$T/keygen.ed2026")" '"v=DKIM1; k=ed25519; p='
assert_exit 0 "$QUEUERUN" dkim keygen Bulk.Example.NET fb --bits 1024 --out "$KEYS/fb.pem"
cp "$OUT" "$T/keygen.fb"
assert_contains "$(cat "$T/keygen.fb")" "fb._domainkey.bulk.example.net. IN TXT"
assert_eq "600 600 600" "$(stat -c %a "$KEYS/s2026.pem" "$KEYS/ed2026.pem" "$KEYS/fb.pem" | tr '\n' ' ' | sed 's/ $//')" "mode of the key files"
assert_eq 2048 "$(openssl pkey -in "$KEYS/s2026.pem" -noout -text 2>/dev/null | sed -n 's/.*Private-Key: (\([0-9]*\) bit.*/\1/p')" "RSA key size"
assert_match "$(openssl pkey -in "$KEYS/ed2026.pem" -noout -text 2>&1 | head -1)" "ED25519" "Ed25519 key"
sum=$(sha256sum "$KEYS/s2026.pem")
assert_exit 73 "$QUEUERUN" dkim keygen example.org s2026 --out "$KEYS/s2026.pem"
assert_one_line_stderr "File exists"
assert_eq "$sum" "$(sha256sum "$KEYS/s2026.pem")" "an existing key is left alone"
assert_exit 64 "$QUEUERUN" dkim keygen example.org s1 --bits 512 --out "$KEYS/x.pem"
assert_one_line_stderr "1024 to 4096"
assert_exit 64 "$QUEUERUN" dkim keygen example.org s1 --ed25519 --bits 2048 --out "$KEYS/x.pem"
assert_exit 64 "$QUEUERUN" dkim keygen "bad domain" s1 --out "$KEYS/x.pem"
assert_exit 73 "$QUEUERUN" dkim keygen example.org s1 --out "$T/no/such/dir/x.pem"
assert_true "[ ! -e '$KEYS/x.pem' ]" "no key file left by refused keygens"

# record FILE: the TXT value keygen printed, its strings joined
record() {
	"$PYTHON" -c '
import re, sys
t = open(sys.argv[1]).read()
print("".join(re.findall(r"\"([^\"]*)\"", t.split("IN TXT (", 1)[1].split(")", 1)[0])))' "$1"
}

write_zone() {
	{
		echo "sink.test MX 10 mx.sink.test"
		echo "example.org MX 10 mx.sink.test"
		echo "mx.sink.test A $IP_MX"
		echo "s2026._domainkey.example.org TXT $(record "$T/keygen.s2026")"
		echo "ed2026._domainkey.example.org TXT $(record "$T/keygen.ed2026")"
		echo "fb._domainkey.bulk.example.net TXT $(record "$T/keygen.fb")"
		printf '%s\n' "$@"
	} >"$SRV/zone.new"
	mv "$SRV/zone.new" "$SRV/zone"
}

section "start the DNS server and the recording sink"
write_zone
start_dns "$SRV/zone"
start_sink sink --listen $IP_MX:@P@ --save-dir "$SRV/saved"
P=$PORT

DKIM_CONF=(
	"dkim \"example.org\" {"
	"  key \"s2026\" { private_key = \"$KEYS/s2026.pem\" }"
	"  key \"ed2026\" { private_key = \"$KEYS/ed2026.pem\" }"
	"}"
	"dkim \"bulk.example.net\" { key \"fb\" { private_key = \"$KEYS/fb.pem\" } }"
)

# world NAME [CONFIG-LINE...]: a fresh spool using these servers and keys
world() {
	local name=$1
	shift
	setup "$name" "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $P" \
	    "${DKIM_CONF[@]}" "$@"
}

# ---------------------------------------------------------------- check
section "check: the configuration with its keys, and the published records"
world check
assert_exit 0 "$QUEUERUN" check
assert_contains "$(last_out)" "configuration ok (3 dkim keys)"
assert_exit 0 "$QUEUERUN" check dkim
assert_eq 3 "$(grep -c ': ok: ' "$OUT")" "keys whose record matches"
assert_contains "$(last_out)" "example.org ed2026 (ed25519, 256 bits): ok: ed2026._domainkey.example.org publishes this key"
assert_exit 0 "$QUEUERUN" check dkim bulk.example.net
assert_eq 1 "$(grep -c . "$OUT")" "lines of check dkim bulk.example.net"
assert_exit 64 "$QUEUERUN" check dkim nosuch.example
# Another key at s2026 (the Ed25519 one's record), none at fb.
{
	echo "sink.test MX 10 mx.sink.test"
	echo "s2026._domainkey.example.org TXT v=DKIM1; k=rsa; p=$(record "$T/keygen.fb" | sed 's/.*p=//')"
	echo "ed2026._domainkey.example.org TXT v=DKIM1; k=ed25519; p="
} >"$SRV/zone.bad"
mv "$SRV/zone.bad" "$SRV/zone"
sleep 1.1	# the server reads a changed zone by its time stamp
assert_exit 65 "$QUEUERUN" check dkim
assert_contains "$(last_out)" "example.org s2026 (rsa, 2048 bits): WRONG: s2026._domainkey.example.org publishes another key"
assert_contains "$(last_out)" "example.org ed2026 (ed25519, 256 bits): REVOKED"
assert_contains "$(last_out)" "bulk.example.net fb (rsa, 1024 bits): MISSING: fb._domainkey.bulk.example.net"
assert_contains "$(last_out)" "$(sed -n '/IN TXT/p' "$T/keygen.fb")"
write_zone "ed2026._domainkey.example.org SERVFAIL"
sleep 1.1
assert_exit 75 "$QUEUERUN" check dkim example.org
assert_contains "$(last_out)" "example.org s2026 (rsa, 2048 bits): ok"
assert_contains "$(last_out)" "example.org ed2026 (ed25519, 256 bits): UNKNOWN: DNS did not answer"
write_zone
sleep 1.1

# ---------------------------------------------------------------- signing
# saved TESTID: the file the sink saved for that X-Test-Id (one)
saved() { sinkq "[m['file'] for m in tid('$1')][0]"; }
# verify FILE...: dkimverify.sh's lines (also kept in $SRV/verify.out)
verify() {
	"$SERVERS/dkimverify.sh" "$SRV/zone" "$@" >"$SRV/verify.out" 2>"$SRV/verify.err"
	assert_eq 0 "$?" "dkimverify.sh ran ($(head -c 500 "$SRV/verify.err"))"
	cat "$SRV/verify.out"
}
pass_once() { assert_exit 0 timeout -k 5 120 "$QUEUERUN" run --flush; }

section "signing: RSA and Ed25519, both verifiers, the log and show"
world sign
printf 'From: Alice <alice@example.org>\nTo: bob@sink.test\nSubject: signed\nX-Test-Id: plain\n\nHello, signed world.\n' >"$SRV/plain"
submit_file "$SRV/plain" -i -f alice@example.org bob@sink.test
ID=$NEWID
assert_eq "dkim: example.org/s2026,ed2026 (From: domain example.org)" \
    "$(show "$ID" | grep '^dkim: ')" "show's dkim line"
pass_once
check_log "$ID" bob@sink.test sent '2\.0\.0' ", dkim=example.org/s2026,ed2026"
F=$(saved plain)
V=$(verify "$F")
assert_contains "$V" "$F 0 d=example.org s=s2026 a=rsa-sha256 dkimpy=pass opendkim=pass"
assert_contains "$V" "$F 1 d=example.org s=ed2026 a=ed25519-sha256 dkimpy=pass opendkim=pass"
assert_eq 2 "$(grep -c '^DKIM-Signature: ' "$F")" "DKIM-Signature fields"
assert_match "$(head -c 200 "$F")" '^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;' "the first field"
assert_match "$(tr -d '\r\n\t ' <"$F" | grep -o ';h=[^;]*' | head -1)" '^;h=From:To:Subject:Date:Message-ID:From$' "signed fields (sendmail added Date and Message-ID), From over-signed"
assert_eq 0 "$(sinkq "tid('plain')[0]['bare_lf'] + tid('plain')[0]['long_lines']")" "bare LFs and long lines"

section "hard content: CRLF, 8-bit, folded and long lines, dot lines"
"$PYTHON" - "$SRV/hard" <<'EOF'
import sys
words = " ".join("word%d" % i for i in range(200))
lines = [
    "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.org>",
    "To: Bob <bob@sink.test>,",
    "\tCarol <carol@sink.test>",
    "Subject: Grüße aus Köln,",
    "  a folded   subject   with  odd   spacing\t",
    "X-Test-Id: hard",
    "Message-ID: <hard.1@example.org>",
    ("X-Long: " + words)[:1200],
    # Signed, and with no blank to fold at: it gets CRLF SPACE, which
    # relaxed canonicalisation keeps as a space: signed as it goes out.
    "References: <" + "r" * 1100 + "@example.org>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "Ünïcödé body line.   ",
    "trailing blanks\t \t",
    ".a line starting with a dot",
    ".",
    "é" * 600,
    "",
    "",
]
open(sys.argv[1], "wb").write("\r\n".join(lines).encode())
EOF
submit_file "$SRV/hard" -i -f joerg@example.org bob@sink.test
ID=$NEWID
pass_once
check_log "$ID" bob@sink.test sent '2\.0\.0' ", dkim=example.org/s2026,ed2026"
F=$(saved hard)
assert_eq 0 "$(sinkq "tid('hard')[0]['long_lines']")" "long lines on the wire"
assert_eq True "$(sinkq "tid('hard')[0]['eightbit']")" "8-bit content on the wire"
assert_match "$(tr -d '\r\n\t ' <"$F" | grep -o ';h=[^;]*' | head -1)" 'References' "References: is signed"
assert_eq 1 "$(grep -c '^ rrr' "$F")" "the long References: line was folded with CRLF SPACE"
V=$(verify "$F")
assert_contains "$V" "$F 0 d=example.org s=s2026 a=rsa-sha256 dkimpy=pass opendkim=pass"
assert_contains "$V" "$F 1 d=example.org s=ed2026 a=ed25519-sha256 dkimpy=pass opendkim=pass"

section "a bounce is signed like any message from its sender's domain"
world bounce
printf 'From: alice@example.org\nTo: r550-gone@sink.test\nSubject: bounce me\nX-Test-Id: tobounce\n\nx\n' >"$SRV/tobounce"
submit_file "$SRV/tobounce" -i -f alice@example.org r550-gone@sink.test
ID=$NEWID
pass_once
pass_once	# the bounce, if the first pass left it
check_log "$ID" r550-gone@sink.test bounced '5\.1\.1' ", dkim=example.org/s2026,ed2026"
B=$(sinkq "[m['file'] for m in to('alice@example.org') if m['mail_from'] == ''][0]")
assert_match "$(grep -m1 '^From: ' "$B")" 'MAILER-DAEMON@host\.example\.org' "the bounce's From:"
V=$(verify "$B")
assert_contains "$V" "$B 0 d=example.org s=s2026 a=rsa-sha256 dkimpy=pass opendkim=pass"
assert_contains "$V" "$B 1 d=example.org s=ed2026 a=ed25519-sha256 dkimpy=pass opendkim=pass"

section "tampering: a changed octet fails both verifiers"
sed 's/Ünïcödé body line/Unicode body line/' "$F" >"$SRV/tampered"
V=$(verify "$SRV/tampered")
assert_contains "$V" "$SRV/tampered 0 d=example.org s=s2026 a=rsa-sha256 dkimpy=fail opendkim=fail"
assert_contains "$V" "$SRV/tampered 1 d=example.org s=ed2026 a=ed25519-sha256 dkimpy=fail opendkim=fail"

section "alignment: a subdomain signs with its parent's section; fallback"
world align "dkim_fallback_domain = \"bulk.example.net\""
printf 'From: news@lists.example.org\nTo: bob@sink.test\nSubject: sub\nX-Test-Id: sub\n\nparent\n' >"$SRV/sub"
submit_file "$SRV/sub" -i -f news@lists.example.org bob@sink.test
ID_SUB=$NEWID
printf 'From: shop@other.test\nTo: bob@sink.test\nSubject: fallback\nX-Test-Id: fb\n\nfallback\n' >"$SRV/fb"
submit_file "$SRV/fb" -i -f shop@other.test bob@sink.test
ID_FB=$NEWID
assert_eq "dkim: example.org/s2026,ed2026 (parent of the From: domain lists.example.org)" \
    "$(show "$ID_SUB" | grep '^dkim: ')" "show for a subdomain"
assert_eq "dkim: bulk.example.net/fb (dkim_fallback_domain: the From: domain other.test has no dkim section)" \
    "$(show "$ID_FB" | grep '^dkim: ')" "show for the fallback"
printf 'From:\nTo: bob@sink.test\nSubject: empty from\nX-Test-Id: nofrom\n\nno address\n' >"$SRV/nofrom"
submit_file "$SRV/nofrom" -i -f shop@other.test bob@sink.test
ID_NOFROM=$NEWID
assert_eq "dkim: bulk.example.net/fb (dkim_fallback_domain: no From: address)" \
    "$(show "$ID_NOFROM" | grep '^dkim: ')" "show for an empty From:"
pass_once
check_log "$ID_SUB" bob@sink.test sent '2\.0\.0' ", dkim=example.org/s2026,ed2026"
check_log "$ID_FB" bob@sink.test sent '2\.0\.0' ", dkim=bulk.example.net/fb"
V=$(verify "$(saved sub)" "$(saved fb)")
assert_contains "$V" "$(saved sub) 0 d=example.org s=s2026 a=rsa-sha256 dkimpy=pass opendkim=pass"
assert_contains "$V" "$(saved sub) 1 d=example.org s=ed2026 a=ed25519-sha256 dkimpy=pass opendkim=pass"
assert_contains "$V" "$(saved fb) 0 d=bulk.example.net s=fb a=rsa-sha256 dkimpy=pass opendkim=pass"
assert_eq 1 "$(grep -c '^DKIM-Signature: ' "$(saved fb)")" "signatures of the fallback"
check_log "$ID_NOFROM" bob@sink.test sent '2\.0\.0' ", dkim=bulk.example.net/fb"
# opendkim-testmsg checks header syntax strictly and refuses a message
# with an empty From: before it looks at a signature: dkimpy alone here.
assert_contains "$(verify "$(saved nofrom)")" "$(saved nofrom) 0 d=bulk.example.net s=fb a=rsa-sha256 dkimpy=pass"

section "no signature when no domain matches and there is no fallback"
world nosign
printf 'From: shop@other.test\nTo: bob@sink.test\nSubject: none\nX-Test-Id: none\n\nunsigned\n' >"$SRV/none"
submit_file "$SRV/none" -i -f shop@other.test bob@sink.test
ID=$NEWID
assert_eq "dkim: none (the From: domain other.test has no dkim section, and no dkim_fallback_domain)" \
    "$(show "$ID" | grep '^dkim: ')" "show for an unsigned message"
pass_once
check_log "$ID" bob@sink.test sent '2\.0\.0' "250"
assert_not_contains "$(loglines "$ID" bob@sink.test)" "dkim=" "log line of an unsigned message"
assert_eq 0 "$(grep -ci '^DKIM-Signature:' "$(saved none)")" "signatures of an unmatched message"
assert_eq "$(saved none) - unsigned" "$(verify "$(saved none)")" "verifiers on the unsigned message"

section "once per message: two transactions carry the same signature"
world once \
    "provider sink { domains = { \"sink.test\" } recipients_per_message = 1 }"
printf 'From: alice@example.org\nTo: a@sink.test, b@sink.test\nSubject: twice\nX-Test-Id: twice\n\ntwo transactions\n' >"$SRV/twice"
submit_file "$SRV/twice" -i -f alice@example.org a@sink.test b@sink.test
ID=$NEWID
pass_once
check_log "$ID" a@sink.test sent '2\.0\.0' ", dkim=example.org/s2026,ed2026"
check_log "$ID" b@sink.test sent '2\.0\.0' ", dkim=example.org/s2026,ed2026"
assert_eq 2 "$(sinkq "len(tid('twice'))")" "transactions of the message"
assert_eq 1 "$(sinkq "len(set(m['sha256'] for m in tid('twice')))")" "distinct contents of its transactions (same signature)"
V=$(verify $(sinkq "' '.join(m['file'] for m in tid('twice'))"))
assert_eq 4 "$(grep -c 'dkimpy=pass opendkim=pass' <<<"$V")" "verified signatures of the two transactions"

# ---------------------------------------------------------------- bad keys
section "bad key files: refused with file:line at start and by check"
openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:512 -out "$KEYS/small.pem" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$KEYS/ec.pem" 2>/dev/null
chmod 600 "$KEYS/small.pem" "$KEYS/ec.pem"
cp -p "$KEYS/s2026.pem" "$KEYS/open.pem"
chmod 644 "$KEYS/open.pem"
# badkey NAME FILE NEEDLE: a world whose fourth line is the key section
badkey() {
	setup "bad-$1" "resolver = \"127.0.0.1:$DNS_PORT\"" "smtp_port = $P" \
	    "dkim \"example.org\" {" "  key \"s2026\" { private_key = \"$2\" }" "}"
	printf 'From: alice@example.org\nSubject: x\nX-Test-Id: bad-%s\n\nx\n' "$1" >"$SRV/bad-$1"
	# sendmail runs as the submitting user: it never reads the keys
	submit_file "$SRV/bad-$1" -i -f alice@example.org bob@sink.test
	local line
	line=$(grep -n 'key "s2026"' "$CONF" | cut -d: -f1)
	assert_exit 78 "$QUEUERUN" check
	assert_one_line_stderr "$CONF:$line: dkim example.org: key s2026: $2: $3"
	assert_exit 78 "$QUEUERUN" run --flush
	assert_one_line_stderr "$CONF:$line: dkim example.org: key s2026: $2: $3"
	assert_eq 0 "$(sinkq "len(tid('bad-$1'))")" "messages sent with a bad key"
	assert_queue_count 1 "mail waits while the key is bad"
}
badkey missing "$KEYS/nosuch.pem" "no such file"
badkey open "$KEYS/open.pem" "readable or writable by everyone (mode 0644)"
badkey small "$KEYS/small.pem" "an RSA key of 512 bits"
badkey ec "$KEYS/ec.pem" "neither an RSA nor an Ed25519 key"
printf 'not a key\n' >"$KEYS/junk.pem"
chmod 600 "$KEYS/junk.pem"
badkey junk "$KEYS/junk.pem" "not a private key in PEM form"
setup bad-names "dkim \"example.org\" { key \"s 1\" { private_key = \"$KEYS/s2026.pem\" } }"
assert_exit 78 "$SENDMAIL" -bp
assert_one_line_stderr "$CONF:$(grep -n '"s 1"' "$CONF" | cut -d: -f1): dkim example.org: key \"s 1\": a selector is one or more DNS labels"
setup bad-fallback "${DKIM_CONF[@]}" "dkim_fallback_domain = \"nosection.test\""
assert_exit 78 "$QUEUERUN" check
assert_one_line_stderr "dkim_fallback_domain \"nosection.test\" has no dkim section"

assert_no_traceback
finish
