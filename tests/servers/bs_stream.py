#!/usr/bin/python3
# bs_stream.py N SENDER RCPT TAG [HEADER]
# Writes an SMTP dialogue for `sendmail -bs` that queues N messages,
# one transaction each (lib.sh's queue_bs): %d in RCPT becomes the
# message number, each message has "X-Test-Id: TAG-number" and, when
# given, the header line HEADER.
import sys

n, sender, rcpt, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
extra = (sys.argv[5] + "\r\n") if len(sys.argv) > 5 and sys.argv[5] else ""
w = sys.stdout.buffer
w.write(b"EHLO client.example\r\n")
for i in range(n):
    r = rcpt.replace("%d", str(i))
    w.write(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
             "From: <%s>\r\nTo: <%s>\r\nSubject: %s %d\r\nX-Test-Id: %s-%d\r\n"
             "%s\r\nmessage %d\r\n.\r\n"
             % (sender, r, sender, r, tag, i, tag, i, extra, i)).encode())
w.write(b"QUIT\r\n")
