#!/bin/bash
# NAME
#	stress_crash - kill -9 spool users at random moments
# DESCRIPTION
#	Rounds of 8 concurrent `sendmail -t -i` processes (messages 0.5 KB to
#	300 KB), plus in every other round a `sendmail -bp` reader, are killed
#	with SIGKILL at random moments spread over their running time (some
#	are left to finish). Then one 5 MB message is killed repeatedly at
#	points spread over its run. Asserts:
#	  - after every round a new process opens the spool with no manual
#	    recovery: mailq exits 0 and a fresh submission exits 0, neither
#	    hangs;
#	  - no process ends in any way but exit 0, SIGKILL from the test, or
#	    (for one running beside a killed one) exit 75;
#	  - every submission that exited 0 is queued exactly once and intact;
#	    one that exited 75 is not queued at all (its caller will retry);
#	  - every queued message, killed or not, is complete: body checksum,
#	    token header, its own recipient, envelope size equal to the CRLF
#	    content size; none is queued twice, none is unknown;
#	  - a 5 MB message submitted after the kills is queued intact.
#	Under MXL_SANITIZE=1: 20 rounds instead of 60 and 4 kills of the
#	large message instead of 10 (same properties, ASan processes are slow),
#	and leak detection off: a process meeting a panicked environment
#	cannot close its BerkeleyDB handles.
# SEE ALSO
#	stress_concurrency.sh, stress_diskfull.sh
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON"
setup crash
mkdir -p "$W/msgs"

if [ -n "${MXL_SANITIZE:-}" ]; then rounds=20 bigkills=4; else rounds=60 bigkills=10; fi

cat >"$W/driver.py" <<'PY'
import base64, hashlib, os, random, re, signal, subprocess
import sys, time

SENDMAIL, QUEUERUN, CONF, MSGDIR = sys.argv[1:5]
ROUNDS, BIGKILLS = int(sys.argv[5]), int(sys.argv[6])
ENV = dict(os.environ, MXLANE_CONFIG=CONF)
if os.environ.get("MXL_SANITIZE"):
    # A process that finds the environment panicked by a kill -9 gives
    # up with 75; BerkeleyDB will not close handles of a panicked
    # environment, so their memory stays allocated at exit and LSan would
    # turn that 75 into 1. Leaks are checked by every other test; here
    # ASan still checks memory errors.
    # (The last setting of an option wins.)
    ENV["ASAN_OPTIONS"] = ENV.get("ASAN_OPTIONS", "detect_leaks=1") + ":detect_leaks=0"
DEADLINE = time.monotonic() + 420     # run.sh allows 600s per test
HANG = 60               # a single process may take this long, even under ASan
hung = False            # once a process hangs, stop: each hang costs HANG
PER_ROUND = 8
BIG = 5 * 1024 * 1024

seed = int(os.environ.get("MXL_SEED", str(int(time.time()))))
rng = random.Random(seed)
print("stress_crash: seed %d (set MXL_SEED to replay)" % seed)

def body_for(token, size=None):
    r = random.Random(token)
    if size is None:
        size = r.randint(512, 8192) if r.random() < 0.7 else r.randint(32768, 300000)
    b64 = base64.b64encode(r.randbytes(size * 3 // 4))
    return (b"token %s \xe2\x9c\x93\n" % token.encode()
            + b"\n".join(b64[k:k + 76] for k in range(0, len(b64), 76)) + b"\n")

sent = {}   # token -> sha256 of body
def write_message(token, size=None):
    body = body_for(token, size)
    sent[token] = hashlib.sha256(body).hexdigest()
    path = os.path.join(MSGDIR, token + ".eml")
    with open(path, "wb") as f:
        f.write(b"From: Crash <crash@sender.example>\n"
                b"To: <%s@rcpt.example>\n"
                b"Subject: crash %s\n"
                b"X-Stress-Token: %s\n\n" % ((token.encode(),) * 3))
        f.write(body)
    return path

failures = []
def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)

def run_batch(specs):
    """specs: list of (argv, stdin path or None, kill time or None).
    Starts all at once, SIGKILLs each still running at its kill time,
    returns [(returncode, seconds, stderr)]. Fails on a hang."""
    global hung
    procs, errs = [], []
    t0 = time.monotonic()
    for k, (argv, inp, _) in enumerate(specs):
        err = open(os.path.join(MSGDIR, "stderr.%d" % k), "w+b")
        stdin = open(inp, "rb") if inp else subprocess.DEVNULL
        procs.append(subprocess.Popen(argv, stdin=stdin, env=ENV,
                                      stdout=subprocess.DEVNULL, stderr=err))
        if inp:
            stdin.close()
        errs.append(err)
    kill_at = [s[2] for s in specs]
    ended = [None] * len(procs)
    while None in ended:
        now = time.monotonic() - t0
        if now > HANG:
            hung = True
            for k, p in enumerate(procs):
                if ended[k] is None:
                    fail("%s (pid %d) hung for %ds%s" % (
                        " ".join(specs[k][0][1:]), p.pid, HANG, where_stuck(p.pid)))
                    p.kill()
                    p.wait()
                    ended[k] = now
            break
        for k, p in enumerate(procs):
            if ended[k] is not None:
                continue
            if p.poll() is not None:
                ended[k] = now
            elif kill_at[k] is not None and now >= kill_at[k]:
                p.send_signal(signal.SIGKILL)
                kill_at[k] = None
        time.sleep(0.0005)
    out = []
    for k, p in enumerate(procs):
        errs[k].seek(0)
        out.append((p.wait(), ended[k], errs[k].read().decode(errors="replace")))
        errs[k].close()
    return out

def where_stuck(pid):
    """What a hung process waits for: kernel wait channel, and its stack
    when gdb is there (a diagnostic only; nothing depends on it)."""
    info = ""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            info += "; waiting in %s" % f.read().strip()
    except OSError:
        pass
    try:
        bt = subprocess.run(["gdb", "-batch", "-p", str(pid), "-ex", "bt"],
                            capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        frames = [l for l in bt.stdout.decode(errors="replace").split("\n")
                  if l.startswith("#")]
        info += "\n    " + "\n    ".join(frames[:20])
    except (OSError, subprocess.TimeoutExpired):
        pass
    return info

outcome = {}     # token -> returncode
def submit_batch(tokens, kill_times, sizes=None, extra=()):
    specs = [([SENDMAIL, "-t", "-i"], write_message(t, sizes and sizes[k]), kill_times[k])
             for k, t in enumerate(tokens)] + list(extra)
    res = run_batch(specs)
    for k, t in enumerate(tokens):
        rc, _, err = res[k]
        outcome[t] = rc
        if rc not in (0, -signal.SIGKILL, 75):
            fail("submission %s ended with %d: %s" % (t, rc, err.strip()[:300]))
    for k in range(len(tokens), len(specs)):
        rc, _, err = res[k]
        if rc not in (0, -signal.SIGKILL, 75):
            fail("mailq beside the kills ended with %d: %s" % (rc, err.strip()[:300]))
    return res

def next_process_works(where):
    """The next processes after a crash: mailq and a plain submission."""
    res = run_batch([([SENDMAIL, "-bp"], None, None)])
    if res[0][0] != 0:
        fail("%s: mailq after the kills exited %d: %s" % (where, res[0][0], res[0][2].strip()[:300]))
    tok = "after-%s" % where
    res = submit_batch([tok], [None])
    if res[0][0] != 0:
        fail("%s: submission after the kills exited %d: %s" % (where, res[0][0], res[0][2].strip()[:300]))

# Warm-up: one batch left to finish tells how long a round's processes run.
res = submit_batch(["warm-%d" % k for k in range(PER_ROUND)], [None] * PER_ROUND)
span = max(r[1] for r in res)
print("warm-up batch of %d took %.3fs" % (PER_ROUND, span))
if failures:
    sys.exit(1)     # nothing works even without kills: no point going on

killed = 0
for rnd in range(ROUNDS):
    if time.monotonic() > DEADLINE or len(failures) > 10 or hung:
        fail("stopped early at round %d of %d" % (rnd, ROUNDS))
        break
    tokens = ["r%d-%d" % (rnd, k) for k in range(PER_ROUND)]
    # 75% are killed at a moment spread over the whole run, 25% finish.
    kt = [rng.uniform(0, 1.3 * span) if rng.random() < 0.75 else None for _ in tokens]
    extra = []
    if rnd % 2:
        extra.append(([SENDMAIL, "-bp"], None, rng.uniform(0, span)))
    res = submit_batch(tokens, kt, extra=extra)
    killed += sum(1 for r in res if r[0] == -signal.SIGKILL)
    done = [r[1] for r in res[:PER_ROUND] if r[0] == 0]
    if done:   # follow the real running time as the spool grows
        span = max(0.7 * span + 0.3 * max(done), 0.002)
    next_process_works("round%d" % rnd)

# A 5 MB message killed at points spread over its run.
if hung or len(failures) > 10:
    print("stress_crash: stopping before the 5 MB part")
    sys.exit(1)
t = time.monotonic()
res = submit_batch(["big-first"], [None], sizes=[BIG])
big_span = time.monotonic() - t
if res[0][0] != 0:
    fail("5 MB submission exited %d: %s" % (res[0][0], res[0][2].strip()[:300]))
print("5 MB submission took %.3fs" % big_span)
for k in range(BIGKILLS):
    at = big_span * (0.05 + 1.0 * (k + rng.random()) / BIGKILLS)
    submit_batch(["big-%d" % k], [at], sizes=[BIG])
    killed += outcome["big-%d" % k] == -signal.SIGKILL
    next_process_works("big%d" % k)
    if hung:
        sys.exit(1)
submit_batch(["big-last"], [None], sizes=[BIG])
if outcome["big-last"] != 0:
    fail("5 MB submission after the kills exited %d" % outcome["big-last"])

# Everything that is queued, checked against what was sent.
ID_LINE = re.compile(rb"^([0-9A-F]{13})([*!]?)\s+(\d+)\s")
TRAILER = re.compile(rb"^-- (\d+) Kbytes in (\d+) Requests?\.$")
p = subprocess.run([SENDMAIL, "-bp"], env=ENV, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=HANG)
if p.returncode != 0:
    fail("final mailq exited %d" % p.returncode)
    sys.exit(1)
msgs, trailer = [], None
for line in p.stdout.split(b"\n"):
    m = ID_LINE.match(line)
    if m:
        msgs.append([m.group(1).decode(), []])
    elif TRAILER.match(line):
        trailer = int(TRAILER.match(line).group(2))
    elif line.startswith((b" ", b"\t")) and msgs and not line.strip().startswith(b"("):
        msgs[-1][1].append(line.strip().decode())
if trailer != len(msgs):
    fail("final mailq: trailer %r, %d messages listed" % (trailer, len(msgs)))
ids = [m[0] for m in msgs]
if len(set(ids)) != len(ids):
    fail("final mailq lists a queue id twice")

queued = {}
for qid, rcpts in msgs:
    toks = [r[:-len("@rcpt.example")] for r in rcpts if r.endswith("@rcpt.example")]
    if len(rcpts) != 1 or len(toks) != 1 or toks[0] not in sent:
        fail("%s: unexpected recipients %r" % (qid, rcpts))
        continue
    if toks[0] in queued:
        fail("%s queued twice (%s and %s)" % (toks[0], queued[toks[0]], qid))
    queued[toks[0]] = qid

for tok, rc in outcome.items():
    if rc == 0 and tok not in queued:
        fail("%s exited 0 but is not queued" % tok)
    if rc == 75 and tok in queued:
        fail("%s exited 75 but is queued as %s (a retry would duplicate it)" % (tok, queued[tok]))

for tok, qid in queued.items():
    p = subprocess.run([QUEUERUN, "show", qid], env=ENV, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=HANG)
    if p.returncode != 0:
        fail("queuerun show %s exited %d" % (qid, p.returncode))
        continue
    out = p.stdout
    start = b"*** MESSAGE CONTENTS %s ***\n" % qid.encode()
    end = b"*** END OF MESSAGE %s ***" % qid.encode()
    a, b = out.find(start), out.rfind(end)
    if a < 0 or b < a:
        fail("queuerun show %s: content markers missing" % qid)
        continue
    content = out[a + len(start):b]
    head, sep, body = content.partition(b"\n\n")
    if hashlib.sha256(body).hexdigest() != sent[tok]:
        fail("%s (%s, rc %s): stored body is not what was sent (%d bytes)"
             % (qid, tok, outcome.get(tok), len(body)))
    if b"\nX-Stress-Token: %s\n" % tok.encode() not in b"\n" + head + b"\n":
        fail("%s: header X-Stress-Token: %s missing" % (qid, tok))
    m = re.search(rb"^size: (\d+)$", out[:a], re.M)
    crlf = len(content) + content.count(b"\n")
    if not m or int(m.group(1)) != crlf:
        fail("%s: envelope size %r, content is %d bytes with CRLF"
             % (qid, m and m.group(1), crlf))

n75 = sum(1 for rc in outcome.values() if rc == 75)
nkq = sum(1 for t, rc in outcome.items() if rc == -signal.SIGKILL and t in queued)
print("stress_crash: %d submissions, %d exited 0, %d processes killed "
      "(%d killed submissions were queued whole), %d exited 75; "
      "%d queued messages all checked"
      % (len(outcome), sum(1 for rc in outcome.values() if rc == 0),
         killed, nkq, n75, len(queued)))
sys.exit(1 if failures else 0)
PY

# The driver runs for minutes, so not under assert_exit's per-command limit;
# run.sh's per-test limit bounds it, and the driver bounds itself.
if "$PYTHON" "$W/driver.py" "$SENDMAIL" "$QUEUERUN" "$CONF" \
	"$W/msgs" "$rounds" "$bigkills"; then
	pass
else
	fail "stress_crash: the driver found the failures listed above" \
	    "errors in the log: $(grep -iE 'error|warning|fatal|panic' "$LOGFILE" 2>/dev/null | tail -n 20)"
fi
finish
