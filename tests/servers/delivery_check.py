#!/usr/bin/python3
# delivery_check.py SINKLOG MAP MXLOG
# The checker of the runner tests: the sink's JSON log and mxlane's
# log against the map queue_bs.py wrote; prints key=value.
import collections, json, re, sys
SINKLOG, MAP, MXLOG = sys.argv[1:4]
want = {}
qid_of = {}
for line in open(MAP):
    tid, qid, rcpt = line.split()
    want[tid] = (qid, rcpt)
    qid_of[qid] = tid
recs = [r for r in map(json.loads, open(SINKLOG)) if r.get("type") == "message"]
copies = collections.Counter(r.get("x_test_id") for r in recs)
shas = collections.defaultdict(set)
wrong_rcpt = wrong_qid = unknown = 0
for r in recs:
    t = r.get("x_test_id")
    if t not in want:
        unknown += 1
        continue
    shas[t].add(r["sha256"])
    if r["rcpt_tos"] != [want[t][1]]:
        wrong_rcpt += 1
    if ("." + want[t][0] + "@") not in (r.get("message_id") or ""):
        wrong_qid += 1
known = [t for t in copies if t in want]
sent = collections.Counter()
removed = collections.Counter()
pids = set()
other = collections.Counter()
pat = re.compile(r"mxlane/smtp\[(\d+)\]: ([0-9A-F]{13}): to=<[^>]*>, .* status=(\w+) ")
rem = re.compile(r"mxlane/qmgr\[\d+\]: ([0-9A-F]{13}): removed$")
for line in open(MXLOG, errors="replace"):
    m = pat.search(line)
    if m:
        if m.group(3) == "sent":
            sent[m.group(2)] += 1
            pids.add(m.group(1))
        else:
            other[m.group(3)] += 1
        continue
    m = rem.search(line.rstrip("\n"))
    if m:
        removed[m.group(1)] += 1
kv = dict(
    expected=len(want), records=len(recs), distinct=len(known),
    missing=len(set(want) - set(known)), unknown=unknown,
    duplicates=sum(copies[t] - 1 for t in known),
    max_copies=max(copies.values()) if copies else 0,
    dup_sha_differs=sum(1 for t in known if len(shas[t]) > 1),
    wrong_rcpt=wrong_rcpt, wrong_qid=wrong_qid,
    null_sender=sum(1 for r in recs if r.get("mail_from") == ""),
    sent_lines=sum(sent.values()), sent_qids=len(sent),
    sent_unknown=len([q for q in sent if q not in qid_of]),
    sent_missing=len([q for q in qid_of if q not in sent]),
    sent_twice=len([q for q in sent if sent[q] > 1]),
    sent_pids=len(pids), deferred=other["deferred"], bounced=other["bounced"],
    removed_lines=sum(removed.values()), removed_qids=len(removed),
    removed_twice=len([q for q in removed if removed[q] > 1]),
    removed_unknown=len([q for q in removed if q not in qid_of]))
print(" ".join("%s=%s" % i for i in kv.items()))
