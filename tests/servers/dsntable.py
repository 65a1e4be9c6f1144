#!/usr/bin/python3
# dsntable.py SINKLOG
# The DSNs smtpsink.py accepted (null sender, saved with --save-dir),
# each checked by dsncheck.py next to this file: one line per recipient
# block, tab separated (lib.sh's dsn_table):
#   QUEUE-ID KIND RCPT-TO FINAL-RECIPIENT ACTION STATUS REMOTE-MTA DIAGNOSTIC
# RCPT-TO lists the DSN's envelope recipients, joined by commas; a file
# dsncheck.py rejects gives "INVALID FILE WHY".
import json, os, subprocess, sys

check = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dsncheck.py")
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["type"] != "message" or r["mail_from"] != "":
        continue
    p = subprocess.run([sys.executable, check, r["file"]],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        print("INVALID\t%s\t%s" % (r["file"], p.stderr.decode().strip()))
        continue
    d = json.loads(p.stdout)
    for b in d["recipients"]:
        print("\t".join(str(x) for x in (
            d["queue_id"], d["kind"], ",".join(r["rcpt_tos"]),
            b["final_recipient"], b["action"], b["status"],
            b["remote_mta"], b["diagnostic"])))
