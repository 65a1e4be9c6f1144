#!/usr/bin/python3
# NAME
#	memsample.py - the memory of a process and its descendants
# SYNOPSIS
#	memsample.py PID
# DESCRIPTION
#	Every 100 ms until PID is gone, sums the proportional set size (Pss
#	in /proc/P/smaps_rollup) over PID and all its descendants, so that
#	pages they share (libraries, the spool's shared memory, what a fork
#	did not copy) count once, and notes the largest Rss of any one of
#	them. Prints "PSS_KB RSS_KB": the largest sum seen, the largest
#	single Rss seen. Used by the benchmarks (tests/bench/) for the
#	queue runner and its delivery workers.
import os, sys, time

root = int(sys.argv[1])


def children(pid):
    kids = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def rollup(pid):
    pss = rss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


most_pss = most_rss = 0
while os.path.exists("/proc/%d" % root):
    pids, todo = [], [root]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += children(p)
    total = 0
    for p in pids:
        pss, rss = rollup(p)
        total += pss
        most_rss = max(most_rss, rss)
    most_pss = max(most_pss, total)
    time.sleep(0.1)
print(most_pss, most_rss)
