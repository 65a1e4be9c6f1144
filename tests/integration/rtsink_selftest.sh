#!/bin/bash
# NAME
#	rtsink_selftest.sh - the C sink tests/servers/rtsink does what it says
# DESCRIPTION
#	Starts one rtsink with -d 100 on 127.0.1.1-3 (one free port) and
#	drives it with python3 sockets: 2, 3 and 1 sessions at once on the
#	three addresses, each two messages, then checks
#	  - every reply, the greeting included, comes one round trip
#	    (100 ms, give or take) after its command, and a pipelined
#	    MAIL, RCPT, RCPT, DATA group gets its four replies after one;
#	  - the record file has exactly one "ADDR X-Test-Id" line per
#	    message ("-" for one without the header), and none for a
#	    message whose client reset the connection while its 250 was
#	    held;
#	  - the stats: sessions, max_concurrent and messages per address
#	    (2/3/1 at once), the global line, SIGUSR1 with sessions open;
#	  - SIGTERM exits 0; without -d a reply comes at once; usage errors
#	    exit 2, a taken address exits 3.
#	Loopback only; takes about 3 seconds.
. "$(dirname "$0")/../lib.sh"

RTSINK=$MXL_BUILD/tests/servers/rtsink
need_file "$PYTHON" "$RTSINK"
D=$T/rtsink
mkdir -p "$D"

cat >"$D/client.py" <<'PY'
"""Drives rtsink for rtsink_selftest.sh: client.py PORT ADDR=N...
opens N sessions at once on each ADDR; prints one line per session,
"ADDR replies greeting-s ehlo-s group-s dot-s"."""
import socket, sys, threading, time

port = int(sys.argv[1])
plan = [(a, int(n)) for a, n in (x.split("=") for x in sys.argv[2:])]
bar = threading.Barrier(sum(n for _, n in plan), timeout=20)
out, lock = [], threading.Lock()

def replies(f, n):
    codes = []
    while len(codes) < n:
        line = f.readline()
        if not line:
            codes.append("EOF")
            break
        if line[3:4] != b"-":
            codes.append(line[:3].decode())
    return codes

def timed(c, f, data, n):
    t0 = time.monotonic()
    if data:
        c.sendall(data)
    return replies(f, n), time.monotonic() - t0

def session(addr, k):
    try:
        t0 = time.monotonic()
        c = socket.create_connection((addr, port), timeout=10)
        f = c.makefile("rb")
        g = replies(f, 1)
        tg = time.monotonic() - t0
        bar.wait()      # every session open at once
        e, te = timed(c, f, b"EHLO rt.example\r\n", 1)
        codes, tp, td = g + e, [], []
        for m in range(2):
            r, t = timed(c, f, b"MAIL FROM:<a@src.example>\r\n"
                         b"RCPT TO:<b@dest.example>\r\nRCPT TO:<c@dest.example>\r\n"
                         b"DATA\r\n", 4)
            codes += r
            tp.append(t)
            r, t = timed(c, f, b"Subject: rt\r\nX-test-id:  rt-%s-%d-%d \r\n\r\n"
                         b"..stuffed\r\n.\r\n%s" % (addr.encode(), k, m,
                         b"QUIT\r\n" if m == 1 else b""), 2 if m == 1 else 1)
            codes += r
            td.append(t)
        bar.wait()      # nobody leaves before all are done
        res = "%s %s %.3f %.3f %.3f %.3f" % (addr, ",".join(codes), tg, te,
                                             max(tp), max(td))
    except Exception as ex:
        res = "%s error %r" % (addr, ex)
        bar.abort()
    with lock:
        out.append(res)

ts = [threading.Thread(target=session, args=(a, k)) for a, n in plan
      for k in range(n)]
for t in ts:
    t.start()
for t in ts:
    t.join(60)
print("\n".join(sorted(out)))
PY

cat >"$D/odd.py" <<'PY'
"""odd.py PORT ADDR: a message without X-Test-Id, then one whose client
resets the connection while the sink holds the 250; prints the codes."""
import socket, sys, time
c = socket.create_connection((sys.argv[2], int(sys.argv[1])), timeout=10)
f = c.makefile("rb")
codes = []
def replies(n):
    while n > 0:
        line = f.readline()
        if not line:
            codes.append("EOF")
            return
        if line[3:4] != b"-":
            codes.append(line[:3].decode())
            n -= 1
c.sendall(b"EHLO odd.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
          b"DATA\r\nSubject: no id\r\n\r\nbody\r\n.\r\n")
replies(6)
c.sendall(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n"
          b"DATA\r\nX-Test-Id: reset\r\n\r\nbody\r\n.\r\n")
time.sleep(0.02)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
c.close()
print(",".join(codes))
PY

# between X LO HI: LO <= X < HI (decimals)
assert_between() {
	if awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; then
		pass
	else
		fail "${4:-value} $1 is not in [$2, $3)"
	fi
}

# ---------------------------------------------------------------- delay

section "-d 100 on three addresses, 2, 3 and 1 sessions at once"
A1=127.0.1.1 A2=127.0.1.2 A3=127.0.1.3
start_rtsink rt $A1 $A2 $A3 -- -d 100
assert_eq "port=$RT_PORT listen=$A1:$RT_PORT listen=$A2:$RT_PORT listen=$A3:$RT_PORT" \
    "$(grep -v '^pid=' "$RT_DIR/ready" | tr '\n' ' ' | sed 's/ $//')" "ready file"
R=$(timeout -k 5 60 "$PYTHON" "$D/client.py" "$RT_PORT" $A1=2 $A2=3 $A3=1)
assert_eq "6 6" "$(printf '%s\n' "$R" | grep -c .) $(printf '%s\n' "$R" |
    grep -c ' 220,250,250,250,250,354,250,250,250,250,354,250,221 ')" \
    "sessions, and sessions with every reply right: $R"
while read -r addr _ tg te tp td; do
	assert_between "$tg" 0.095 0.5 "$addr: seconds to the greeting"
	assert_between "$te" 0.095 0.5 "$addr: seconds to the EHLO reply"
	# one delay for the group, not four
	assert_between "$tp" 0.095 0.19 "$addr: seconds to the replies of a pipelined group"
	assert_between "$td" 0.095 0.19 "$addr: seconds to the 250 (and 221) after the dot"
done <<<"$R"

assert_eq "messages=12 connections=6 max_concurrent=6 active=0" \
    "$(rt_stats | sed 's/ octets=[0-9]*//')" "global stats line (SIGUSR1)"
assert_eq "addr=$A1 sessions=2 max_concurrent=2 messages=4 active=0" "$(rt_stats $A1)" "stats of $A1"
assert_eq "addr=$A2 sessions=3 max_concurrent=3 messages=6 active=0" "$(rt_stats $A2)" "stats of $A2"
assert_eq "addr=$A3 sessions=1 max_concurrent=1 messages=2 active=0" "$(rt_stats $A3)" "stats of $A3"

section "the record file"
assert_eq "220,250,250,250,354,250" "$(timeout -k 5 30 "$PYTHON" "$D/odd.py" "$RT_PORT" $A3)" \
    "a message without X-Test-Id"
sleep 0.3    # the reset message's 250 would have been due by now
{
	for a in "$A1 2" "$A2 3" "$A3 1"; do
		set -- $a
		for ((k = 0; k < $2; k++)); do
			echo "$1 rt-$1-$k-0"
			echo "$1 rt-$1-$k-1"
		done
	done
	echo "$A3 -"
} | sort >"$D/want"
sort "$RT_RECORD" >"$D/got"
assert_files_equal "$D/want" "$D/got" "record file (one line per accepted message)"
assert_eq "addr=$A3 sessions=2 max_concurrent=1 messages=3 active=0" "$(rt_stats $A3)" \
    "stats of $A3: the reset message is not counted"

section "sessions open at SIGUSR1, SIGTERM"
exec 7<>/dev/tcp/$A2/"$RT_PORT"
exec 8<>/dev/tcp/$A2/"$RT_PORT"
read -r -t 5 G7 <&7
read -r -t 5 G8 <&8
assert_eq "220 rtsink ESMTP 220 rtsink ESMTP" "${G7%$'\r'} ${G8%$'\r'}" "greetings"
assert_eq "addr=$A2 sessions=5 max_concurrent=3 messages=6 active=2" "$(rt_stats $A2)" "two sessions open"
kill -TERM "$RT_PID"
if wait_for 5 gone "$RT_PID"; then
	wait "$RT_PID"
	assert_eq 0 "$?" "exit status after SIGTERM"
else
	fail "rtsink did not exit within 5 s of SIGTERM"
fi
exec 7>&- 8>&-
assert_eq "messages=13 connections=9 max_concurrent=6 active=2" \
    "$(head -1 "$RT_STATS" | sed 's/ octets=[0-9]*//')" "final global stats line"
assert_eq "" "$(cat "$RT_ERR")" "rtsink's stderr"

# ---------------------------------------------------------------- no delay, usage

section "no delay; usage"
start_rtsink fast $A1
R=$(timeout -k 5 60 "$PYTHON" "$D/client.py" "$RT_PORT" $A1=1)
assert_match "$R" ' 220,250,250,250,250,354,250,250,250,250,354,250,221 ' "replies without -d"
read -r _ _ tg te tp td <<<"$R"
for t in "$tg" "$te" "$tp" "$td"; do
	assert_between "$t" 0 0.05 "seconds to a reply without -d"
done
assert_exit 3 "$RTSINK" -l $A1:"$RT_PORT" -r "$D/r" -s "$D/s"
assert_contains "$(last_err)" "cannot listen on $A1:$RT_PORT" "address in use"
assert_exit 2 "$RTSINK" -l 10.1.2.3:25 -r "$D/r" -s "$D/s"
assert_contains "$(last_err)" "not a loopback address" "non-loopback refused"
assert_exit 2 "$RTSINK" -l $A1:0 -l $A1:0 -r "$D/r" -s "$D/s"
assert_contains "$(last_err)" "given twice" "an address twice"
assert_exit 2 "$RTSINK" -l $A1:0 -r "$D/r" -s "$D/s" -d x
assert_exit 2 "$RTSINK" -l $A1:0 -r "$D/r"

finish
