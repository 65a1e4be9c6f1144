#!/bin/bash
# NAME
#	dkimverify.sh - check DKIM signatures with two independent verifiers
# SYNOPSIS
#	dkimverify.sh ZONE FILE...
# DESCRIPTION
#	For every DKIM-Signature field of every FILE (a message as a server
#	received it, CRLF line ends), prints one line
#
#	    FILE N d=DOMAIN s=SELECTOR a=ALGORITHM dkimpy=pass|fail opendkim=pass|fail
#
#	N counting the signatures from 0 in the order of the fields, and
#	"FILE - unsigned" for a file without one. The verifiers are Debian's
#	python3-dkim (dkimpy: dkim.DKIM(...).verify(idx=N)) and OpenDKIM's
#	opendkim-testmsg (libopendkim), which is given the message with that
#	one signature alone, since it reports on the message as a whole.
#
#	Both fetch the public keys from DNS with their own resolvers
#	(dnspython; libresolv), which only read /etc/resolv.conf and ask
#	port 53. So the script runs itself again in a private network and
#	mount namespace (unshare; user namespace too when not root), where
#	the loopback interface is its own, tests/servers/dnsserver.py serves
#	ZONE on 127.0.0.1:53, and a private /etc/resolv.conf (a bind mount
#	seen by nothing outside) names it. Nothing leaves the namespace.
#
#	Exit status: 0 when it could run the verifiers (whatever they said),
#	2 on bad usage, 3 when the namespace or the DNS server could not be
#	set up.
set -u

SERVERS=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

if [ $# -lt 2 ]; then
	echo "usage: dkimverify.sh ZONE FILE..." >&2
	exit 2
fi

if [ -z "${DKIMVERIFY_INSIDE:-}" ]; then
	userns=
	[ "$(id -u)" -eq 0 ] || userns=--map-root-user
	exec unshare $userns --mount --net env DKIMVERIFY_INSIDE=1 "$0" "$@"
fi

zone=$1
shift
dir=$(mktemp -d "${TMPDIR:-/tmp}/dkimverify.XXXXXX") || exit 3
dns=
cleanup() {
	[ -z "$dns" ] || kill "$dns" 2>/dev/null
	[ -z "$dns" ] || wait "$dns" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

ip link set lo up || exit 3
echo "nameserver 127.0.0.1" >"$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf || exit 3
"$PY" "$SERVERS/dnsserver.py" --zone "$zone" --address 127.0.0.1 --port 53 \
    --port-file "$dir/port" >"$dir/dns.out" 2>&1 &
dns=$!
for _ in $(seq 1 100); do
	[ -s "$dir/port" ] && break
	kill -0 "$dns" 2>/dev/null || break
	sleep 0.1
done
if [ ! -s "$dir/port" ]; then
	echo "dkimverify.sh: the DNS server did not start: $(cat "$dir/dns.out")" >&2
	exit 3
fi

"$PY" - "$dir" "$@" <<'EOF'
import re, subprocess, sys
import dkim

tmp = sys.argv[1]
SIG = re.compile(rb"^dkim-signature:", re.I)

def fields(head):
    out = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            out[-1] += b"\r\n" + line
        else:
            out.append(line)
    return out

for path in sys.argv[2:]:
    msg = open(path, "rb").read()
    head, sep, body = msg.partition(b"\r\n\r\n")
    fs = fields(head)
    sigs = [i for i, f in enumerate(fs) if SIG.match(f)]
    if not sigs:
        print(path, "-", "unsigned")
        continue
    for n, at in enumerate(sigs):
        d = dkim.DKIM(msg)
        try:
            ok = d.verify(idx=n)
        except Exception as e:              # dkimpy raises on bad keys
            print("dkimpy:", path, n, e, file=sys.stderr)
            ok = False
        tags = dict(t.strip().split("=", 1) for t in
                    re.sub(r"\s+", "", fs[at].split(b":", 1)[1].decode())
                    .split(";") if "=" in t)
        only = [f for i, f in enumerate(fs) if i == at or i not in sigs]
        one = b"\r\n".join(only) + sep + body
        r = subprocess.run(["opendkim-testmsg"], input=one,
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            print("opendkim-testmsg:", path, n, r.stderr.decode().strip(),
                  file=sys.stderr)
        print(path, n, "d=%s s=%s a=%s" % (tags.get("d"), tags.get("s"),
              tags.get("a")), "dkimpy=%s" % ("pass" if ok else "fail"),
              "opendkim=%s" % ("pass" if r.returncode == 0 else "fail"))
EOF
