#!/bin/bash
# NAME
#	stress_diskfull - spool write errors: file-size rlimit and a full disk
# DESCRIPTION
#	(a) RLIMIT_FSIZE: submissions run under file-size limits that cut the
#	    write at different points (below the size of every spool file,
#	    just above the current log file, further above it), with SIGXFSZ
#	    at its default disposition as PHP or cron leave it. Asserts each
#	    one exits 75 (a small message under a tiny limit and a 3 MB
#	    message under any limit below 1.5 MB must; where a limit leaves
#	    room the submission may also exit 0, and is then queued intact),
#	    never dies of SIGXFSZ, says why on stderr, and queues nothing
#	    when it exits 75. After every attempt, without the limit: mailq
#	    exits 0 with the right count, a normal submission works, and at
#	    the end every queued message is intact.
#	(b) A 48 MB tmpfs holds the spool; a filler file leaves 0, 64 KiB,
#	    256 KiB or 1 MiB free. Asserts a 2 MB submission exits 75 and is
#	    not queued, a small one on the completely full disk exits 75
#	    and is not queued, or exits 0 and is queued (it may fit in the
#	    space the spool already holds),
#	    mailq on the full disk does not crash (0 with the right count, or
#	    75), and once the filler is gone: mailq exits 0 with the right
#	    count, a 2 MB submission works, and every queued message is
#	    intact.
#	Needs root for the tmpfs mount (CI runs as root). The mount is
#	removed by a trap. Counts are small enough to need no scaling under
#	MXL_SANITIZE=1.
# SEE ALSO
#	stress_crash.sh
. "$(dirname "$0")/../lib.sh"

need_file "$SENDMAIL" "$QUEUERUN" "$PYTHON"
need_cmd db5.3_stat
if [ "$(id -u)" -ne 0 ]; then
	fail "stress_diskfull needs root to mount a tmpfs (CI runs as root)"
	finish
fi

# (a) an ordinary spool; (b) a spool alone on a small tmpfs.
setup rlimit
RLIMIT_CONF=$CONF RLIMIT_SPOOL=$SPOOL
setup tmpfs
mnt=$W/mnt
mkdir "$mnt"
trap 'exit 130' INT TERM HUP
if mount -t tmpfs -o size=48m,mode=0755 mxltest-full "$mnt"; then
	on_exit 'umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true'
	pass
else
	fail "cannot mount a tmpfs on $mnt"
	finish
fi
mkdir "$mnt/spool"
write_config "$CONF" "$mnt/spool" "$ALIASES" "$LOGFILE"

cat >"$W/driver.py" <<'PY'
import base64, hashlib, os, random, re, resource, signal, subprocess, sys

SENDMAIL, QUEUERUN, MODE, CONF, SPOOL = sys.argv[1:6]
ENV = dict(os.environ, MXLANE_CONFIG=CONF)
TIMEOUT = 120
failures = []
def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)

sent = {}
def message(token, size):
    r = random.Random(token)
    b64 = base64.b64encode(r.randbytes(size * 3 // 4))
    body = (b"token %s\n" % token.encode()
            + b"\n".join(b64[k:k + 76] for k in range(0, len(b64), 76)) + b"\n")
    sent[token] = hashlib.sha256(body).hexdigest()
    return (b"From: Disk <disk@sender.example>\nTo: <%s@rcpt.example>\n"
            b"Subject: disk %s\nX-Stress-Token: %s\n\n" % ((token.encode(),) * 3)) + body

def submit(token, size, fsize=None):
    """Returns (returncode, stderr). SIGXFSZ is left at its default."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    p = subprocess.run([SENDMAIL, "-t", "-i"], input=message(token, size),
                       env=ENV, capture_output=True, timeout=TIMEOUT,
                       preexec_fn=limit if fsize is not None else None)
    return p.returncode, p.stderr.decode(errors="replace").strip()

ID_LINE = re.compile(rb"^([0-9A-F]{13})([*!]?)\s+(\d+)\s")
TRAILER = re.compile(rb"^-- (\d+) Kbytes in (\d+) Requests?\.$")
def mailq():
    """Returns (returncode, {token: id}) and checks the trailer."""
    p = subprocess.run([SENDMAIL, "-bp"], env=ENV, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=TIMEOUT)
    if p.returncode != 0:
        return p.returncode, None
    msgs, trailer = [], None
    for line in p.stdout.split(b"\n"):
        m = ID_LINE.match(line)
        if m:
            msgs.append([m.group(1).decode(), []])
        elif line == b"Mail queue is empty":
            trailer = 0
        elif TRAILER.match(line):
            trailer = int(TRAILER.match(line).group(2))
        elif line.startswith((b" ", b"\t")) and msgs and not line.strip().startswith(b"("):
            msgs[-1][1].append(line.strip().decode())
    if trailer != len(msgs):
        fail("mailq trailer says %r requests, %d listed" % (trailer, len(msgs)))
    queued = {}
    for qid, rcpts in msgs:
        tok = rcpts[0][:-len("@rcpt.example")] if len(rcpts) == 1 else None
        if tok not in sent or tok in queued:
            fail("%s: unexpected or duplicate recipients %r" % (qid, rcpts))
            continue
        queued[tok] = qid
    return 0, queued

def verify(tok, qid):
    p = subprocess.run([QUEUERUN, "show", qid], env=ENV, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=TIMEOUT)
    if p.returncode != 0:
        fail("queuerun show %s exited %d" % (qid, p.returncode))
        return
    out = p.stdout
    start = b"*** MESSAGE CONTENTS %s ***\n" % qid.encode()
    a, b = out.find(start), out.rfind(b"*** END OF MESSAGE %s ***" % qid.encode())
    if a < 0 or b < a:
        fail("queuerun show %s: content markers missing" % qid)
        return
    content = out[a + len(start):b]
    body = content.partition(b"\n\n")[2]
    if hashlib.sha256(body).hexdigest() != sent[tok]:
        fail("%s (%s): stored body differs from what was sent" % (qid, tok))
    m = re.search(rb"^size: (\d+)$", out[:a], re.M)
    if not m or int(m.group(1)) != len(content) + content.count(b"\n"):
        fail("%s: envelope size does not match the content" % qid)

expected = set()
def consistent(where, full_disk=False):
    """After a failed write: mailq lists exactly the expected messages."""
    rc, queued = mailq()
    if rc != 0:
        if full_disk and rc == 75:
            print("note: %s: mailq on the full disk exits 75" % where)
            return
        fail("%s: mailq exited %d" % (where, rc))
        return
    if set(queued) != expected:
        fail("%s: queue holds %s, expected %s" % (
            where, sorted(queued), sorted(expected)))

def expect_75(where, tok, rc, err):
    if rc == -signal.SIGXFSZ:
        fail("%s: killed by SIGXFSZ instead of exiting 75" % where)
    elif rc < 0:
        fail("%s: killed by signal %d instead of exiting 75" % (where, -rc))
    elif rc != 75:
        fail("%s: exit %d, expected 75 (%s)" % (where, rc, err[:200]))
    elif not err:
        fail("%s: exit 75 without a word on stderr" % where)

def accept(tok, rc, err, where):
    if rc == 0:
        expected.add(tok)
    else:
        print("%s: %s exited %d: %s" % (where, tok, rc, err[:160]))

def seed(n, size):
    for k in range(n):
        tok = "seed-%d-%d" % (len(expected), k)
        rc, err = submit(tok, size)
        if rc != 0:
            fail("seed submission %s exited %d: %s" % (tok, rc, err[:200]))
        else:
            expected.add(tok)

def largest_file(pattern=None):
    best = 0
    for d, _, files in os.walk(SPOOL):
        for f in files:
            if pattern is None or re.match(pattern, f):
                best = max(best, os.path.getsize(os.path.join(d, f)))
    return best

def final_check(where):
    rc, queued = mailq()
    if rc != 0:
        fail("%s: final mailq exited %d" % (where, rc))
        return
    if set(queued) != expected:
        fail("%s: queue holds %s, expected %s" % (where, sorted(queued), sorted(expected)))
    for tok, qid in queued.items():
        verify(tok, qid)
    print("%s: %d queued messages all intact" % (where, len(queued)))

if MODE == "rlimit":
    seed(5, 2000)
    seed(1, 200000)
    def log_position():
        """(offset where the next log record goes, size of that log file:
        BerkeleyDB may extend a new log file to its full size at once)."""
        p = subprocess.run(["db5.3_stat", "-l", "-h", SPOOL], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=TIMEOUT)
        stat = {}
        for line in p.stdout.decode(errors="replace").split("\n"):
            v, _, k = line.partition("\t")
            stat[k] = v
        try:
            num = int(stat["Current log file number"])
            off = int(stat["Current log file offset"])
        except (KeyError, ValueError):
            fail("db5.3_stat -l -h %s: no log position (exit %d)" % (SPOOL, p.returncode))
            return 0, 0
        return off, os.path.getsize(os.path.join(SPOOL, "log.%010d" % num))
    BIG3 = 3 << 20
    # (what, message size, limit or a function of the log position,
    #  must it fail: None = whenever the message cannot fit before the
    #  limit in the current log file)
    trials = [("small message, 1 KiB limit", 1000, 1024, True),
              ("3 MB message, 64 KiB limit", BIG3, 64 << 10, True),
              ("3 MB message, limit 1 KiB past the log's end", BIG3, 1 << 10, None),
              ("3 MB message, limit 100 KiB past the log's end", BIG3, 100 << 10, None),
              ("3 MB message, limit 1 MiB past the log's end", BIG3, 1 << 20, None),
              ("3 MB message, limit 16 MiB past the log's end", BIG3, 16 << 20, False)]
    ended_75 = 0
    for k, (what, size, lim, must_fail) in enumerate(trials):
        written, apparent = log_position()
        if must_fail is not True:
            lim += written
        if must_fail is None:
            # No new log file can take the message: it must cross lim.
            must_fail = apparent - written > size + (512 << 10) and lim < written + size
        tok = "limited-%d" % k
        rc, err = submit(tok, size, lim)
        where = "rlimit %s (%d bytes, log written to %d)" % (what, lim, written)
        if must_fail:
            expect_75(where, tok, rc, err)
        elif must_fail is False and rc != 0:
            fail("%s: exit %d under a roomy limit: %s" % (where, rc, err[:200]))
        elif rc != 0:
            expect_75(where, tok, rc, err)
        if rc == 0:
            expected.add(tok)
            print("%s: fit, exit 0" % where)
        elif rc == 75:
            ended_75 += 1
        consistent(where)
        tok = "after-limit-%d" % k
        rc, err = submit(tok, 3000)
        if rc != 0:
            fail("%s: next normal submission exited %d: %s" % (where, rc, err[:200]))
        else:
            expected.add(tok)
    print("rlimit: %d of %d limited submissions exited 75" % (ended_75, len(trials)))
    final_check("rlimit")

elif MODE == "tmpfs":
    seed(5, 2000)
    filler = os.path.join(os.path.dirname(SPOOL), "filler")
    def fill(reserve):
        st = os.statvfs(SPOOL)
        free = st.f_bavail * st.f_frsize
        chunk = b"\0" * (1 << 20)
        with open(filler, "wb", buffering=0) as f:
            left = max(free - reserve, 0)
            try:
                while left > 0:
                    left -= f.write(chunk[:min(left, len(chunk))])
                if reserve == 0:    # and the last few blocks, to ENOSPC
                    for _ in range(4096):
                        f.write(b"\0" * 4096)
            except OSError:
                pass
    for k, reserve in enumerate([256 << 10, 0, 64 << 10, 1 << 20]):
        where = "tmpfs with %d KiB free" % (reserve >> 10)
        fill(reserve)
        tok = "full-big-%d" % k
        rc, err = submit(tok, 2 << 20)
        expect_75(where + ", 2 MB message", tok, rc, err)
        if reserve == 0:
            # A small message may still fit: the log files are made full
            # size in advance and a table page may have room. Then it is
            # queued, durably, and sendmail says so (0); if it does not
            # fit, 75 and nothing queued. Never 75 with it queued.
            tok = "full-small-%d" % k
            rc, err = submit(tok, 500)
            if rc == 0:
                expected.add(tok)
            else:
                expect_75(where + ", small message", tok, rc, err)
            consistent(where + ", while full", full_disk=True)
        os.unlink(filler)
        consistent(where + ", filler removed")
        tok = "freed-%d" % k
        rc, err = submit(tok, 3000)
        if rc != 0:
            fail("%s: submission after freeing space exited %d: %s" % (where, rc, err[:200]))
        else:
            expected.add(tok)
    tok = "freed-big"
    rc, err = submit(tok, 2 << 20)
    if rc != 0:
        fail("tmpfs: 2 MB submission after freeing space exited %d: %s" % (rc, err[:200]))
    else:
        expected.add(tok)
    final_check("tmpfs")
sys.exit(1 if failures else 0)
PY

# Each driver run takes seconds; run.sh's per-test limit bounds them.
if "$PYTHON" "$W/driver.py" "$SENDMAIL" "$QUEUERUN" rlimit \
	"$RLIMIT_CONF" "$RLIMIT_SPOOL"; then
	pass
else
	fail "stress_diskfull (a) rlimit: the driver found the failures listed above"
fi
if "$PYTHON" "$W/driver.py" "$SENDMAIL" "$QUEUERUN" tmpfs \
	"$CONF" "$mnt/spool"; then
	pass
else
	fail "stress_diskfull (b) tmpfs: the driver found the failures listed above"
fi
finish
