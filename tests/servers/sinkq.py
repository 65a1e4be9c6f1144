#!/usr/bin/python3
# sinkq.py SINKLOG EXPR
# Prints the Python expression EXPR evaluated over smtpsink.py's JSON
# log (lib.sh's sinkq). EXPR can use:
#   R         every record            M   the accepted messages
#   S         the session records     C   collections.Counter
#   json      the module
#   of(TYPE)  the records of one type
#   tid(ID)   accepted messages whose X-Test-Id is ID
#   tids(P)   accepted messages whose X-Test-Id starts with P
#   at(IP)    accepted messages on the listener at IP
#   sess(IP)  session records of the listener at IP
#   to(ADDR)  accepted messages with ADDR among their recipients
#   body(m)   the content of a saved message (--save-dir) after its
#             header, as bytes
import collections, json, sys

C = collections.Counter
R = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
M = [r for r in R if r["type"] == "message"]
S = [r for r in R if r["type"] == "session"]


def of(t): return [r for r in R if r["type"] == t]
def tid(i): return [m for m in M if m.get("x_test_id") == i]
def tids(p): return [m for m in M if (m.get("x_test_id") or "").startswith(p)]
def at(ip): return [m for m in M if m["listener"].split(":")[0] == ip]
def sess(ip): return [r for r in S if r["listener"].split(":")[0] == ip]
def to(a): return [m for m in M if a in m["rcpt_tos"]]


def body(m):
    b = open(m["file"], "rb").read()
    return b[b.index(b"\r\n\r\n") + 4:]


print(eval(sys.argv[2]))
