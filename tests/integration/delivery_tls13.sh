#!/bin/bash
# NAME
#	delivery_tls13.sh - STARTTLS with TLS 1.3 servers, without a stall
# DESCRIPTION
#	Two real servers on loopback that speak TLS 1.3 only, with a
#	certificate made here with openssl:
#
#	  aiosmtpd ....... tests/servers/tls13smtp.py: Python's ssl, that is
#	                   OpenSSL, which sends its session tickets right
#	                   after the handshake, while EHLO is still in
#	                   libESMTP's buffer (what used to stall a session
#	                   until its time-out; wire.h)
#	  Exim ........... GnuTLS (tls_require_ciphers limited to TLS 1.3),
#	                   which sends its tickets with its first reply
#
#	Each gets three messages in one `queuerun run`, with the reply
#	time-outs at 20 s: the pass must end well within one of them, the
#	log must name TLSv1.3 for each, and each server must have received
#	every message over TLS 1.3. queuerun runs with slowpoll.so
#	(tests/servers/slowpoll.c), so that the tickets are on the socket
#	before libESMTP's first poll after the handshake every time, not
#	only when the machine happens to be slow.
# SEE ALSO
#	delivery_exim.sh, delivery_faults.sh (STARTTLS with smtpsink.py)
. "$(dirname "$0")/../lib.sh"

SLOWPOLL=$MXL_BUILD/tests/servers/slowpoll.so
need_file "$PYTHON" "$SERVERS/dnsserver.py" "$SERVERS/tls13smtp.py" \
    "$SERVERS/exim.conf" "$SENDMAIL" "$QUEUERUN" "$SLOWPOLL"
need_cmd exim4
need_cmd openssl

IP_AIO=127.0.0.171
IP_EXIM=127.0.0.172

section "a test certificate, a TLS 1.3 aiosmtpd, a TLS 1.3 Exim, DNS"
# Where Exim, which gives up root for the Debian-exim account, can read it.
CERTS=$(mktemp -d /tmp/mxlane-tls13.XXXXXX)
on_exit "rm -rf '$CERTS'"
chmod 755 "$CERTS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$CERTS/key.pem" -out "$CERTS/cert.pem" -days 2 \
    -subj /CN=mx.tls13.test -addext subjectAltName=DNS:mx.tls13.test \
    >"$SRV/openssl.out" 2>&1 && pass ||
    fail "openssl req failed" "$(cat "$SRV/openssl.out")"
chmod 644 "$CERTS/key.pem" "$CERTS/cert.pem"
cat >"$SRV/zone" <<EOF
aio.test	MX 10 mx.aio.test
mx.aio.test	A $IP_AIO
exim.test	MX 10 mx.exim.test
mx.exim.test	A $IP_EXIM
EOF
start_dns "$SRV/zone"
P=$((32000 + RANDOM % 8000))
"$PYTHON" "$SERVERS/tls13smtp.py" --address $IP_AIO --port $P \
    --port-file "$SRV/aio.port" --log "$SRV/aio.log" --cert "$CERTS/cert.pem" \
    --key "$CERTS/key.pem" --watch-pid $$ >"$SRV/aio.out" 2>&1 &
track_pid $!
wait_for 20 test -s "$SRV/aio.port" && pass || fail "aiosmtpd did not start" "$(cat "$SRV/aio.out")"
start_exim tls13 $IP_EXIM $P "tls_advertise_hosts = *" \
    "tls_certificate = $CERTS/cert.pem" "tls_privatekey = $CERTS/key.pem" \
    "tls_require_ciphers = NORMAL:-VERS-ALL:+VERS-TLS1.3" \
    "log_selector = +tls_cipher"

setup tls13 \
    "resolver = \"127.0.0.1:$DNS_PORT\"" \
    "smtp_port = $P" \
    "immediate_delivery = false" \
    "smtp_helo_timeout = \"20s\"" \
    "smtp_mail_timeout = \"20s\"" \
    "smtp_data_init_timeout = \"20s\"" \
    "smtp_data_xfer_timeout = \"20s\"" \
    "smtp_data_done_timeout = \"20s\""

for dom in aio exim; do
	for i in 1 2 3; do
		printf 'Subject: tls13 %s %s\n\nbody %s\n' $dom $i $i |
		    assert_exit 0 "$SENDMAIL" -i -f alice@src.example "rcpt$i@$dom.test"
	done
done
assert_queue_count 6

section "one pass delivers everything over TLS 1.3, in bounded time"
T0=$(date +%s%N)
# A sanitized queuerun accepts a library preloaded before its run-time.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
assert_exit 0 env LD_PRELOAD="$SLOWPOLL" SLOWPOLL_MS=50 \
    timeout -k 5 120 "$QUEUERUN" run --flush
MS=$(elapsed_ms "$T0")
say "the pass took $MS ms"
assert_eq 1 "$(pyc "int($MS < 15000)")" "the pass ended within 15 s ($MS ms), not after a time-out"
assert_queue_empty
for dom in aio exim; do
	for i in 1 2 3; do
		n=$(grep -cE "to=<rcpt$i@$dom\.test>, relay=mx\.$dom\.test\[[0-9.]+\]:$P, .*status=sent" "$LOGFILE")
		assert_eq 1 "$n" "rcpt$i@$dom.test sent once"
	done
	assert_match "$(grep -F "Untrusted TLS connection established to mx.$dom.test" "$LOGFILE" | head -1)" \
	    "mxlane/smtp\[[0-9]+\]: Untrusted TLS connection established to mx\.$dom\.test\[[0-9.]+\]:$P: TLSv1\.3 with cipher TLS_[A-Z0-9_]+$" \
	    "the log names TLSv1.3 for mx.$dom.test"
done
assert_eq "3 TLSv1.3" \
    "$("$PYTHON" -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(len(r), " ".join(sorted(set(str(x["tls_version"]) for x in r))))' "$SRV/aio.log")" \
    "messages aiosmtpd received, and their TLS version"
wait_for 20 sh -c '[ "$(grep -c " <= alice@src.example .*X=TLS1.3:" "$0/log/mainlog")" -ge 3 ]' "$EXIM_DIR"
assert_eq 3 "$(grep -c " <= alice@src.example .*X=TLS1.3:" "$EXIM_DIR/log/mainlog")" \
    "messages Exim received over TLS 1.3"
assert_no_match "$(cat "$LOGFILE")" "TLS handshake with .* failed" "no fallback to the clear"

finish
