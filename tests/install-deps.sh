#!/bin/sh
# NAME
#	install-deps.sh - install what building and testing mxlane needs
# SYNOPSIS
#	sudo sh tests/install-deps.sh
# DESCRIPTION
#	Installs the Debian 12 packages for the build (compiler, BerkeleyDB,
#	libconfuse, libesmtp, OpenSSL, libcurl, libopendkim) and for the
#	test suite (the
#	real mail clients the integration tests drive, and the tools later
#	delivery tests use). Idempotent: when every package is already
#	installed it says so and touches nothing, so a second run is quick.
#
#	A few packages are named that apt would only "recommend", because
#	--no-install-recommends leaves them out and a client breaks without
#	them: php-pear (PEAR.php, needed by php-mail's Mail.php) and
#	libmailtools-perl (Mail::Address, needed by git send-email).
#	bsd-mailx depends on some MTA; exim4-daemon-light satisfies that and
#	is the independent MTA the delivery tests deliver to (each test
#	starts its own, with its own configuration, on a loopback port). Its
#	system service is disabled and stopped here, so that it never listens
#	on port 25 (msmtp-mta, which it replaces, had no daemon).
#
#	The DKIM test verifies signatures with python3-dkim (with
#	python3-nacl for Ed25519, named here although python3-dkim depends on
#	it) and OpenDKIM's opendkim-testmsg (opendkim-tools, no daemon), in a
#	private network namespace set up with unshare (util-linux) and ip
#	(iproute2).
#
#	queue_admin.sh validates mailq --json against its JSON schema
#	(tests/data/mailq.schema.json) with python3-jsonschema.
#
#	The content gate's test (gate_spam.sh) starts its own spamd from
#	the spamd package, with the rules spamassassin ships (no sa-update,
#	no network); the system's spamd service is disabled and stopped
#	here like Exim's.
#
#	stats_metrics.sh parses queuerun metrics with
#	python3-prometheus-client's exposition-format parser.
#
#	make fuzz needs clang and libclang-rt-14-dev, the libFuzzer, ASan
#	and UBSan runtimes for clang 14, which clang only recommends
#	(through libclang-common-14-dev); llvm brings llvm-symbolizer,
#	without which sanitizer reports have no function names or lines.
set -eu

PACKAGES="
build-essential pkg-config
libdb-dev db5.3-util libconfuse-dev libesmtp-dev libssl-dev
libcurl4-openssl-dev libopendkim-dev
php-cli php-pear php-mail libphp-phpmailer php-symfony-mailer
python3 python3-aiosmtpd python3-dnslib dnsmasq-base
exim4-daemon-light bsd-mailx mutt
git git-email libmailtools-perl
pflogsumm procps util-linux coreutils diffutils grep sed
openssl passwd gdb time
opendkim-tools python3-dkim python3-nacl python3-dnspython iproute2
python3-jsonschema
python3-prometheus-client
clang libclang-rt-14-dev llvm
spamassassin spamd
"

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: must run as root (sudo sh tests/install-deps.sh)" >&2
	exit 1
fi

missing=
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case $status in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done

# Only the tests' own Exim may run; never the system's on port 25.
quiet_exim() {
	if [ -x /etc/init.d/exim4 ]; then
		update-rc.d exim4 disable >/dev/null 2>&1 || true
		systemctl disable --now exim4 >/dev/null 2>&1 || true
		invoke-rc.d exim4 stop >/dev/null 2>&1 || true
	fi
	if [ -x /etc/init.d/spamd ] || [ -e /lib/systemd/system/spamd.service ]; then
		update-rc.d spamd disable >/dev/null 2>&1 || true
		systemctl disable --now spamd >/dev/null 2>&1 || true
		invoke-rc.d spamd stop >/dev/null 2>&1 || true
	fi
}

if [ -z "$missing" ]; then
	quiet_exim
	echo "install-deps.sh: all build and test packages are installed"
	exit 0
fi

echo "install-deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # word splitting of the list is intended
apt-get install -y --no-install-recommends $missing
quiet_exim
echo "install-deps.sh: done"
