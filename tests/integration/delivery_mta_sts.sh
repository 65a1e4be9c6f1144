#!/bin/bash
# NAME
#	delivery_mta_sts.sh - MTA-STS (RFC 8461): policies fetched, kept, applied
# DESCRIPTION
#	A test CA and a rogue one (openssl, now), one HTTPS server serving
#	each domain's policy (tests/servers/httpsserver.py, certificate from
#	the test CA; mta_sts_port points queuerun at it), a real Exim with
#	STARTTLS and a test-CA certificate, two smtpsink.py processes (one
#	with a test-CA certificate for another name, one with a rogue
#	certificate), the DNS server with the _mta-sts TXT records.
#	smtp_tls_CAfile is the test CA. One `queuerun run` pass each time.
#
#	  enforce, verified ..... *.enforce.test policy, Exim's certificate
#	                          verifies: delivered over TLS ("Verified
#	                          TLS" logged, Exim logs X=TLS...)
#	  enforce, no STARTTLS .. deferred, the reason says so; the server
#	                          never sees MAIL FROM
#	  enforce, rogue CA ..... deferred (did not verify); no MAIL FROM
#	  enforce, wrong name ... deferred (hostname mismatch); no MAIL FROM
#	  testing, wrong name ... delivered; the log says what would have
#	                          failed
#	  enforce, MX outside ... the MX host the policy does not list is
#	                          never connected to; the one it lists gets
#	                          the mail; with none listed, deferred
#	  no policy file ........ (404) delivered as without MTA-STS, a
#	                          warning logged
#	  route and the cache ... queuerun route shows the policy; a second
#	                          look uses the kept one (no new request);
#	                          a new TXT id makes it fetched again
# SEE ALSO
#	queuerun(8) MTA-STS, mxlane.conf(5) mta_sts, smtp_tls_CAfile
. "$(dirname "$0")/../lib.sh"

need_file "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/httpsserver.py" \
    "$SERVERS/smtpsink.py" "$SERVERS/exim.conf" "$SENDMAIL" "$QUEUERUN"
need_cmd exim4 openssl

IP_EXIM=127.0.0.161	# TLS, test CA, mx.enforce.test mx.nomatch.test
IP_PLAIN=127.0.0.162	# no STARTTLS
IP_ROGUE=127.0.0.163	# STARTTLS, rogue CA
IP_WRONG=127.0.0.164	# STARTTLS, test CA, name other.test
IP_OUT=127.0.0.165	# an MX the policy does not list (plain sink)
IP_HTTPS=127.0.0.170

section "certificates, servers and DNS"
make_ca test
make_ca rogue
make_cert test https mta-sts.enforce.test mta-sts.plain.test \
    mta-sts.rogue.test mta-sts.wrong.test mta-sts.testing.test \
    mta-sts.nomatch.test mta-sts.nonelisted.test mta-sts.nofile.test
make_cert test exim mx.enforce.test mx.nomatch.test
make_cert test wrong other.test
make_cert rogue mxrogue mx.rogue.test

start_https web $IP_HTTPS https
WEB=$SRV/web
policy() {	# policy DOMAIN MODE MX...
	local d=$1 mode=$2 m
	shift 2
	mkdir -p "$WEB/root/mta-sts.$d/.well-known"
	{
		printf 'version: STSv1\r\nmode: %s\r\n' "$mode"
		for m in "$@"; do
			printf 'mx: %s\r\n' "$m"
		done
		printf 'max_age: 86400\r\n'
	} >"$WEB/root/mta-sts.$d/.well-known/mta-sts.txt"
}
policy enforce.test enforce "*.enforce.test"
policy plain.test enforce mx.plain.test
policy rogue.test enforce mx.rogue.test
policy wrong.test enforce mx.wrong.test
policy testing.test testing mx.testing.test
policy nomatch.test enforce mx.nomatch.test
policy nonelisted.test enforce mx.somewhere.test

{
	for d in enforce plain rogue wrong testing nomatch nonelisted nofile; do
		echo "_mta-sts.$d.test TXT v=STSv1; id=a1;"
		echo "mta-sts.$d.test A $IP_HTTPS"
	done
	echo "enforce.test MX 10 mx.enforce.test"
	echo "mx.enforce.test A $IP_EXIM"
	echo "plain.test MX 10 mx.plain.test"
	echo "mx.plain.test A $IP_PLAIN"
	echo "rogue.test MX 10 mx.rogue.test"
	echo "mx.rogue.test A $IP_ROGUE"
	echo "wrong.test MX 10 mx.wrong.test"
	echo "mx.wrong.test A $IP_WRONG"
	echo "testing.test MX 10 mx.testing.test"
	echo "mx.testing.test A $IP_WRONG"
	echo "nomatch.test MX 10 mx.outside.test"
	echo "nomatch.test MX 20 mx.nomatch.test"
	echo "mx.outside.test A $IP_OUT"
	echo "mx.nomatch.test A $IP_EXIM"
	echo "nonelisted.test MX 10 mx.outside.test"
	echo "nofile.test MX 10 mx.plain.test"
	echo "notxt.test MX 10 mx.plain.test"
} >"$SRV/zone"
start_dns "$SRV/zone"

# Exim reads its certificate after giving up root: not in the scratch tree.
TLSDIR=$(mktemp -d /tmp/mxlane-mtasts-tls.XXXXXX)
on_exit "rm -rf '$TLSDIR'"
chmod 755 "$TLSDIR"
cp "$SRV/tls/exim.crt" "$SRV/tls/exim.key" "$TLSDIR/"
chmod 644 "$TLSDIR"/*
P=$((32000 + RANDOM % 8000))
start_exim main $IP_EXIM $P "tls_advertise_hosts = *" \
    "tls_certificate = $TLSDIR/exim.crt" "tls_privatekey = $TLSDIR/exim.key" \
    "log_selector = +tls_peerdn"
start_sink plain --listen $IP_PLAIN:$P --listen $IP_OUT:$P \
    --listen $IP_WRONG:$P=starttls \
    --cert "$SRV/tls/wrong.crt" --key "$SRV/tls/wrong.key" \
    --transcript "$SRV/plain.transcript"
PLAINLOG=$SINKLOG
start_sink rogue --listen $IP_ROGUE:$P=starttls \
    --cert "$SRV/tls/mxrogue.crt" --key "$SRV/tls/mxrogue.key" \
    --transcript "$SRV/rogue.transcript"

setup sts \
    "resolver = \"127.0.0.1:$DNS_PORT\"" \
    "smtp_port = $P" \
    "mta_sts_port = $HTTPS_PORT" \
    "smtp_tls_CAfile = \"$SRV/tls/test.crt\"" \
    "smtp_connect_timeout = \"10s\""

# pass: one queue run, bounded
pass_once() { assert_exit 0 timeout -k 5 120 "$QUEUERUN" run --flush; }

# queue_to ADDR TESTID: one message from TESTID@src.example (so that a
# server's transcript tells whose MAIL FROM it saw); prints its id
queue_to() {
	local f
	f=$(message_file "$2")
	submit_file "$f" -i -f "$2@src.example" "$1" >/dev/null
	printf '%s\n' "$NEWID"
}

# mail_froms TESTID: MAIL FROM commands of TESTID's message the sinks heard
mail_froms() { cat "$SRV"/*.transcript | grep -ci "MAIL FROM:<$1@src.example>"; }

section "route shows the policy (and fetches it)"
assert_exit 0 "$QUEUERUN" route bob@enforce.test
assert_match "$(last_out)" "mta-sts: enforce \(policy id a1, fetched now, kept until [0-9-]+ [0-9:]+ UTC\), max_age 86400, mx: \*\.enforce\.test" "route: policy"
assert_contains "$(last_out)" "tls: required, certificate verified against $SRV/tls/test.crt" "route: tls"
assert_exit 0 "$QUEUERUN" route bob@enforce.test
assert_contains "$(last_out)" "policy id a1, kept, kept until" "route: second look uses the kept policy"
assert_eq 1 "$(grep -c 'mta-sts.enforce.test' "$WEB/log")" "one HTTPS request for enforce.test"
assert_exit 0 "$QUEUERUN" route bob@nomatch.test
assert_contains "$(last_out)" "MX hosts not in the policy: mx.outside.test (not used)" "route: MX outside the policy"
assert_not_contains "$(last_out)" "mx: mx.outside.test" "route: mx.outside.test not among the hosts"
assert_exit 0 "$QUEUERUN" route bob@notxt.test
assert_contains "$(last_out)" "mta-sts: none (no policy: no _mta-sts TXT record)" "route: no policy"

section "enforce: verified TLS, delivered"
ID_OK=$(queue_to bob@enforce.test ok)
ID_MATCH=$(queue_to bob@nomatch.test match)
ID_PLAIN=$(queue_to bob@plain.test plain)
ID_ROGUE=$(queue_to bob@rogue.test rogue)
ID_WRONG=$(queue_to bob@wrong.test wrong)
ID_TEST=$(queue_to bob@testing.test testing)
ID_NONE=$(queue_to bob@nonelisted.test nonelisted)
ID_NOFILE=$(queue_to bob@nofile.test nofile)
pass_once

check_log "$ID_OK" bob@enforce.test sent 2.0.0 "relay=mx.enforce.test[$IP_EXIM]:$P"
assert_contains "$(cat "$LOGFILE")" "Verified TLS connection established to mx.enforce.test[$IP_EXIM]:$P" \
    "verified TLS logged"
wait_for 20 grep -qs "<= ok@src.example.*X=TLS" "$EXIM_DIR/log/mainlog"
assert_match "$(cat "$EXIM_DIR/log/mainlog")" "<= ok@src.example.* X=TLS" "Exim received it over TLS"

section "enforce: the MX outside the policy is not used"
check_log "$ID_MATCH" bob@nomatch.test sent 2.0.0 "relay=mx.nomatch.test[$IP_EXIM]:$P"
assert_not_contains "$(cat "$PLAINLOG")" "$IP_OUT:$P" "no session to the MX outside the policy ($IP_OUT)"
check_log "$ID_NONE" bob@nonelisted.test deferred '4\.[0-9]\.[0-9]+' "MTA-STS policy of nonelisted.test (mode enforce, id a1) allows none of its MX hosts (mx.outside.test)"

section "enforce: no STARTTLS, rogue CA, wrong name: deferred, no MAIL FROM"
check_log "$ID_PLAIN" bob@plain.test deferred '4\.[0-9]\.[0-9]+' "requires verified TLS: mx.plain.test[$IP_PLAIN]:$P offered no STARTTLS"
check_log "$ID_ROGUE" bob@rogue.test deferred '4\.[0-9]\.[0-9]+' "requires verified TLS: the certificate of mx.rogue.test[$IP_ROGUE]:$P did not verify"
check_log "$ID_WRONG" bob@wrong.test deferred '4\.[0-9]\.[0-9]+' "requires verified TLS: the certificate of mx.wrong.test[$IP_WRONG]:$P did not verify: hostname mismatch"
assert_eq 0 "$(grep -ci 'MAIL FROM' "$SRV/rogue.transcript")" "rogue server: no MAIL FROM at all"
assert_eq 0 "$(mail_froms plain)" "no MAIL FROM for plain.test"
assert_eq 0 "$(mail_froms wrong)" "no MAIL FROM for wrong.test"
assert_ne 0 "$(mail_froms testing)" "the transcripts do show MAIL FROM (testing.test's)"
check_rcpt "$ID_PLAIN" bob@plain.test queued 1
check_rcpt "$ID_ROGUE" bob@rogue.test queued 1
check_rcpt "$ID_WRONG" bob@wrong.test queued 1

section "testing: delivered, and the log says what would have failed"
check_log "$ID_TEST" bob@testing.test sent 2.0.0 "relay=mx.testing.test[$IP_WRONG]:$P"
assert_contains "$(cat "$LOGFILE")" "MTA-STS policy of testing.test (mode testing, id a1) would have failed: the certificate of mx.testing.test[$IP_WRONG]:$P did not verify: hostname mismatch" \
    "testing: what would have failed is logged"

section "a policy that cannot be fetched: delivered as without MTA-STS"
check_log "$ID_NOFILE" bob@nofile.test sent 2.0.0 "relay=mx.plain.test[$IP_PLAIN]:$P"
assert_match "$(cat "$LOGFILE")" "MTA-STS policy of nofile.test could not be fetched: .*HTTP status 404; delivering without MTA-STS" \
    "the failed fetch is logged"

section "a new TXT id: fetched again"
policy enforce.test testing "*.enforce.test"
assert_exit 0 "$QUEUERUN" route bob@enforce.test
assert_contains "$(last_out)" "mta-sts: enforce (policy id a1, kept" "same id: the kept policy, not the new file"
sed 's/_mta-sts.enforce.test TXT v=STSv1; id=a1;/_mta-sts.enforce.test TXT v=STSv1; id=b2;/' "$SRV/zone" >"$SRV/zone.new"
mv "$SRV/zone.new" "$SRV/zone"
sleep 1
assert_exit 0 "$QUEUERUN" route bob@enforce.test
assert_contains "$(last_out)" "mta-sts: testing (policy id b2, fetched now" "new id: fetched again"
assert_eq 2 "$(grep -c 'mta-sts.enforce.test' "$WEB/log")" "two HTTPS requests for enforce.test in all"

section "mta_sts = no"
echo "mta_sts = no" >>"$CONF"
assert_exit 0 "$QUEUERUN" route bob@plain.test
assert_contains "$(last_out)" "mta-sts: off (mta_sts = no)" "route: off"

assert_no_traceback
finish
