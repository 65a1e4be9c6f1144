#!/bin/bash
# NAME
#	stress_concurrency - many submitters at once while mailq keeps reading
# DESCRIPTION
#	64 concurrent submitters each run 200 separate `sendmail -t -i`
#	processes (12,800 messages) while `mailq` (alternately `sendmail -bp`
#	and the binary invoked as "mailq") lists the queue in a loop the
#	whole time. Asserts:
#	  - every submission exits 0;
#	  - every mailq run exits 0, is well formed (each message line starts
#	    with a 13-hex-digit id, ids are unique within a listing, the
#	    trailer's request count equals the number of listed messages)
#	    and the count never goes down while messages only arrive;
#	  - at the end exactly 12,800 messages are queued (trailer and
#	    listing), ids are unique, and each submission's unique recipient
#	    appears exactly once: nothing lost, nothing duplicated;
#	  - a sample (every large message plus 500 random others) read back
#	    with `queuerun show` is intact: body checksum, token header,
#	    recipient, and the envelope size equal to the CRLF content size.
#	Under MXL_SANITIZE=1 each submitter sends 20 messages instead of 200
#	(still 64 at once, same properties) and 200 are sampled, because
#	every ASan process costs tens of milliseconds at start and exit.
# SEE ALSO
#	stress_crash.sh, stress_diskfull.sh
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON"
setup conc


if [ -n "${MXL_SANITIZE:-}" ]; then per=20 sample=200; else per=200 sample=500; fi

cat >"$W/driver.py" <<'PY'
import base64, concurrent.futures, hashlib, os, random, re, subprocess
import sys, threading, time

SENDMAIL, QUEUERUN, CONF = sys.argv[1], sys.argv[2], sys.argv[3]
WORKERS, PER, SAMPLE = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ENV = dict(os.environ, MXLANE_CONFIG=CONF)
DEADLINE = time.monotonic() + 480      # hard bound; run.sh allows 600s
SUB_TIMEOUT = 120                      # one submission, even under ASan

def is_big(w, i):
    return random.Random(w * 1000003 + i).random() < 0.01

def make_message(w, i):
    """Deterministic per (w, i), so nothing needs keeping after sending.
    About 1% are 64-200 KB (several content chunks), the rest 0.2-8 KB."""
    rng = random.Random(w * 1000003 + i)
    big = rng.random() < 0.01
    n = rng.randint(64 * 1024, 200 * 1024) if big else rng.randint(200, 8000)
    b64 = base64.b64encode(rng.randbytes(n * 3 // 4))
    lines = [b64[k:k + 76] for k in range(0, len(b64), 76)]
    body = (b"Gr\xc3\xbc\xc3\x9fe, token %d-%d\n" % (w, i)
            + b"\n".join(lines) + b"\n")
    head = (b"From: Stress <stress@sender.example>\n"
            b"To: <t-%d-%d@rcpt.example>\n"
            b"Subject: stress %d-%d\n"
            b"X-Stress-Token: %d-%d\n\n" % (w, i, w, i, w, i))
    return head + body, hashlib.sha256(body).hexdigest(), big

ID_LINE = re.compile(rb"^([0-9A-F]{13})([*!]?)\s+(\d+)\s")
TRAILER = re.compile(rb"^-- (\d+) Kbytes in (\d+) Requests?\.$")
TOKEN_RCPT = re.compile(rb"^t-(\d+)-(\d+)@rcpt\.example$")

def parse_mailq(out):
    """Returns (list of (id, size, [rcpts])), trailer count) or raises."""
    msgs, trailer = [], None
    for line in out.split(b"\n"):
        if not line or line.startswith(b"-Queue ID-"):
            continue
        m = ID_LINE.match(line)
        if m:
            msgs.append((m.group(1).decode(), int(m.group(3)), []))
            continue
        t = TRAILER.match(line)
        if t:
            trailer = (int(t.group(1)), int(t.group(2)))
            continue
        if line == b"Mail queue is empty":
            trailer = (0, 0)
            continue
        s = line.strip()
        if line[:1] in (b" ", b"\t") and msgs and not s.startswith(b"("):
            msgs[-1][2].append(s)
            continue
        if s.startswith(b"("):
            continue
        raise ValueError("unexpected mailq line %r" % line[:120])
    if trailer is None:
        raise ValueError("mailq output has no trailer")
    if trailer[1] != len(msgs):
        raise ValueError("trailer says %d requests, %d listed"
                         % (trailer[1], len(msgs)))
    ids = [m[0] for m in msgs]
    if len(set(ids)) != len(ids):
        raise ValueError("a queue id is listed twice in one mailq run")
    return msgs, trailer

errors = []
errors_lock = threading.Lock()
stop = threading.Event()

def fail(msg):
    with errors_lock:
        errors.append(msg)
        if len(errors) >= 20:
            stop.set()

def guarded(fn):
    """A thread that dies of an unexpected exception must fail the test."""
    def run(*args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - reported, then fails the test
            fail("%s%r raised %r" % (fn.__name__, args, e))
            stop.set()
    return run

@guarded
def submitter(w):
    for i in range(PER):
        if stop.is_set():
            return
        if time.monotonic() > DEADLINE:
            fail("submitter %d: time limit reached at message %d" % (w, i))
            return
        msg, _, _ = make_message(w, i)
        try:
            p = subprocess.run([SENDMAIL, "-t", "-i"], input=msg, env=ENV,
                               capture_output=True, timeout=SUB_TIMEOUT)
        except subprocess.TimeoutExpired:
            fail("submission %d-%d hung for %ds" % (w, i, SUB_TIMEOUT))
            continue
        if p.returncode != 0:
            fail("submission %d-%d exited %d: %s" % (
                w, i, p.returncode, p.stderr.decode(errors="replace")[:300]))

mailq_runs = 0
@guarded
def mailq_loop(done):
    global mailq_runs
    last = 0
    while not done.is_set() and mailq_runs < 100000:
        if time.monotonic() > DEADLINE:
            fail("mailq loop: time limit reached")
            return
        # Alternate the two spellings: -bp and argv[0] == "mailq".
        if mailq_runs % 2:
            argv, exe = [SENDMAIL, "-bp"], None
        else:
            argv, exe = ["mailq"], SENDMAIL
        try:
            p = subprocess.run(argv, executable=exe, env=ENV,
                               stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=SUB_TIMEOUT)
        except subprocess.TimeoutExpired:
            fail("mailq hung for %ds during submissions" % SUB_TIMEOUT)
            continue
        mailq_runs += 1
        if p.returncode != 0:
            fail("mailq run %d (%s) exited %d: %s" % (
                mailq_runs, argv[0], p.returncode,
                p.stderr.decode(errors="replace")[:300]))
            continue
        try:
            msgs, _ = parse_mailq(p.stdout)
        except ValueError as e:
            fail("mailq run %d: %s" % (mailq_runs, e))
            continue
        if len(msgs) < last:
            fail("mailq run %d lists %d messages, an earlier run listed %d"
                 % (mailq_runs, len(msgs), last))
        last = max(last, len(msgs))

def show(qid):
    p = subprocess.run([QUEUERUN, "show", qid], env=ENV,
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=SUB_TIMEOUT)
    if p.returncode != 0:
        raise ValueError("queuerun show %s exited %d: %s" % (
            qid, p.returncode, p.stderr.decode(errors="replace")[:300]))
    out = p.stdout
    start = b"*** MESSAGE CONTENTS %s ***\n" % qid.encode()
    end = b"*** END OF MESSAGE %s ***" % qid.encode()
    a, b = out.find(start), out.rfind(end)
    if a < 0 or b < a:
        raise ValueError("queuerun show %s: content markers missing" % qid)
    env = {}
    rcpts = []
    for line in out[:a].split(b"\n"):
        k, sep, v = line.partition(b": ")
        if not sep:
            k, sep, v = line.partition(b":")
        if k == b"recipient":
            rcpts.append(v.strip())
        elif sep and not line.startswith(b" "):
            env[k.decode()] = v.strip()
    return env, rcpts, out[a + len(start):b]

def verify(qid, w, i):
    """Checks one queued message against what submitter w sent as i."""
    _, digest, _ = make_message(w, i)
    env, rcpts, content = show(qid)
    if env.get("queue_id") != qid.encode():
        raise ValueError("%s: show prints queue_id %r" % (qid, env.get("queue_id")))
    want = b"t-%d-%d@rcpt.example" % (w, i)
    if rcpts != [want]:
        raise ValueError("%s: recipients %r, expected [%r]" % (qid, rcpts, want))
    head, sep, body = content.partition(b"\n\n")
    if not sep:
        raise ValueError("%s: stored content has no header/body separator" % qid)
    if b"\nX-Stress-Token: %d-%d\n" % (w, i) not in b"\n" + head + b"\n":
        raise ValueError("%s: X-Stress-Token %d-%d missing from headers" % (qid, w, i))
    if hashlib.sha256(body).hexdigest() != digest:
        raise ValueError("%s (%d-%d): body differs from what was sent (%d bytes stored)"
                         % (qid, w, i, len(body)))
    crlf_size = len(content) + content.count(b"\n")
    if env.get("size") != str(crlf_size).encode():
        raise ValueError("%s: envelope size %r, content is %d bytes with CRLF"
                         % (qid, env.get("size"), crlf_size))

t0 = time.monotonic()
done = threading.Event()
reader = threading.Thread(target=mailq_loop, args=(done,))
reader.start()
threads = [threading.Thread(target=submitter, args=(w,)) for w in range(WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
t_submit = time.monotonic() - t0
done.set()
reader.join()
print("submitted %d x %d in %.1fs (%.0f/s) with %d concurrent mailq runs"
      % (WORKERS, PER, t_submit, WORKERS * PER / t_submit, mailq_runs))
if mailq_runs < 3:
    fail("mailq ran only %d times during the submissions" % mailq_runs)
if errors:
    for e in errors:
        print("FAIL:", e)
    sys.exit(1)

# Final listing: exactly WORKERS*PER messages, each token once.
p = subprocess.run([SENDMAIL, "-bp"], env=ENV, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=SUB_TIMEOUT)
if p.returncode != 0:
    print("FAIL: final mailq exited %d" % p.returncode)
    sys.exit(1)
msgs, (kbytes, requests) = parse_mailq(p.stdout)
total = WORKERS * PER
if requests != total or len(msgs) != total:
    fail("final mailq: trailer %d requests, %d listed, expected %d"
         % (requests, len(msgs), total))
bytes_listed = sum(m[1] for m in msgs)
if not (bytes_listed // 1024 <= kbytes <= (bytes_listed + 1023) // 1024):
    fail("final mailq: trailer says %d Kbytes, listed sizes add up to %d bytes"
         % (kbytes, bytes_listed))
where = {}
for qid, _, rcpts in msgs:
    if len(rcpts) != 1:
        fail("%s lists recipients %r, expected exactly one" % (qid, rcpts))
        continue
    m = TOKEN_RCPT.match(rcpts[0])
    if not m:
        fail("%s has unexpected recipient %r" % (qid, rcpts[0]))
        continue
    tok = (int(m.group(1)), int(m.group(2)))
    if tok in where:
        fail("message %d-%d queued twice: %s and %s" % (tok + (where[tok], qid)))
    where[tok] = qid
missing = [(w, i) for w in range(WORKERS) for i in range(PER) if (w, i) not in where]
if missing:
    fail("%d submissions missing from the queue, e.g. %r" % (len(missing), missing[:5]))
if errors:
    for e in errors:
        print("FAIL:", e)
    sys.exit(1)

# Content: every large message plus a random sample of the others.
seed = int(os.environ.get("MXL_SEED", str(int(time.time()))))
rng = random.Random(seed)
bigs = [t for t in where if is_big(*t)]
others = [t for t in where if not is_big(*t)]
picks = bigs + rng.sample(others, min(SAMPLE, len(others)))
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    futs = {ex.submit(verify, where[t], *t): t for t in picks}
    for f in concurrent.futures.as_completed(futs):
        try:
            f.result()
        except (ValueError, subprocess.TimeoutExpired) as e:
            fail(str(e))
print("final: %d messages, %d ids unique, %d checked by content "
      "(%d large; sample seed %d), %.1fs total"
      % (len(msgs), len(where), len(picks), len(bigs), seed, time.monotonic() - t0))
if errors:
    for e in errors:
        print("FAIL:", e)
    sys.exit(1)
PY

# The driver runs for minutes, so not under assert_exit's per-command limit;
# run.sh's per-test limit bounds it, and the driver bounds itself.
if "$PYTHON" "$W/driver.py" "$SENDMAIL" "$QUEUERUN" "$CONF" \
	64 "$per" "$sample"; then
	pass
else
	fail "stress_concurrency: the driver found the failures listed above" \
	    "errors in the log: $(grep -iE 'error|warning|fatal|panic' "$LOGFILE" 2>/dev/null | tail -n 20)"
fi
finish
