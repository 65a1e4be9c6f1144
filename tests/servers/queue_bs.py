#!/usr/bin/python3
# queue_bs.py SENDMAIL N NDOM PREFIX DOMFMT SIZE PARALLEL MAP
# The submission driver of the runner tests: N messages in PARALLEL
# `sendmail -bs` sessions. Writes "test-id queue-id recipient" lines to
# MAP; prints key=value.
import re, subprocess, sys, threading
SENDMAIL, N, NDOM, PREFIX, DOMFMT, SIZE, PAR, MAP = sys.argv[1:9]
N, NDOM, SIZE, PAR = int(N), int(NDOM), int(SIZE), int(PAR)
FILL = b"".join(b"%075d\r\n" % k for k in range(SIZE // 77))

def message(i):
    tid = "%s-%06d" % (PREFIX, i)
    rcpt = "u%d@%s" % (i, DOMFMT % (i % NDOM))
    head = ("From: <sender@example.org>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "X-Test-Id: %s\r\n\r\n" % (rcpt, tid, tid)).encode()
    return tid, rcpt, head + b"body of " + tid.encode() + b"\r\n" + FILL

results, errors = {}, []

def session(k, idx):
    out = [b"EHLO queue.example\r\n"]
    meta = []
    for i in idx:
        tid, rcpt, data = message(i)
        meta.append((tid, rcpt))
        out.append(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                   % rcpt.encode())
        out.append(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    out.append(b"QUIT\r\n")
    try:
        p = subprocess.run([SENDMAIL, "-bs"], input=b"".join(out),
                           capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        errors.append("session %d timed out" % k)
        return
    ids = re.findall(rb"^250 .*queued as ([0-9A-F]{13})\r?$", p.stdout, re.M)
    bad = re.findall(rb"^[45]\d\d .*$", p.stdout, re.M)
    if p.returncode != 0 or bad or len(ids) != len(meta):
        errors.append("session %d: exit %d, %d ids for %d messages, %r %r"
                      % (k, p.returncode, len(ids), len(meta), bad[:3],
                         p.stderr[:300]))
    results[k] = [(t, q.decode(), r) for (t, r), q in zip(meta, ids)]

ths = [threading.Thread(target=session, args=(k, range(k, N, PAR)))
       for k in range(PAR)]
for t in ths:
    t.start()
for t in ths:
    t.join()
rows = [row for k in sorted(results) for row in results[k]]
with open(MAP, "w") as f:
    for row in rows:
        f.write("%s %s %s\n" % row)
print("queued=%d unique_ids=%d errors=%d" % (len(rows), len(set(r[1] for r in rows)), len(errors)))
for e in errors[:5]:
    print("error: " + e, file=sys.stderr)
