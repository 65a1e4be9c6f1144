#!/usr/bin/python3
"""
NAME
	dsncheck - check that a message is an RFC 3464 delivery status
	notification and summarise it as JSON
SYNOPSIS
	python3 tests/servers/dsncheck.py [--strict] FILE
DESCRIPTION
	Parses FILE (one message, as bytes) with Python's email package,
	the way a mail client or a bounce processor would, and prints one
	line of JSON (keys sorted) on stdout:

	  {"kind": "failed"|"delayed"|"success",
	   "envid": ORIGINAL-ENVELOPE-ID or null,
	   "reporting_mta": NAME or null,
	   "queue_id": X-Mxlane-Queue-ID or null,
	   "has_original": true|false,
	   "original_type": "message/rfc822"|"text/rfc822-headers"|null,
	   "original_message_id": ..., "original_subject": ...,
	   "recipients": [{"final_recipient": ADDR, "original_recipient":
	       ADDR or null, "action": ..., "status": "X.Y.Z",
	       "remote_mta": NAME or null, "diagnostic": TEXT or null}]}

	Addresses, the Remote-MTA name and the diagnostic are given
	without their type ("rfc822;", "dns;", "smtp;"), and folded
	fields are unfolded. kind is "failed" when any recipient failed,
	else "delayed" when any was delayed, else "success".

	The message must be multipart/report; report-type=delivery-status
	with two or three parts, the second message/delivery-status with
	a Reporting-MTA and at least one recipient block, each with a
	Final-Recipient, an RFC 3464 Action and an RFC 3463 Status, the
	third (if any) message/rfc822 or text/rfc822-headers. Dates must
	parse as RFC 5322 dates, Will-Retry-Until may appear only when
	the action is delayed, and the MIME structure must have no
	defects (a boundary that is missing or occurs in the content).

	--strict also checks the raw octets: every line ends in CRLF,
	no line is longer than 998 octets (the returned message included,
	so only for originals with short lines), and the first two parts
	are 7-bit. Messages as bounce.c writes them pass; copies stored
	by a test sink with LF line ends need the default mode.
DIAGNOSTICS
	"dsncheck: FILE: REASON" on stderr and exit status 1 when the
	message is not a valid DSN; exit status 2 on a usage or I/O error.
SEE ALSO
	queuerun/bounce.c, RFC 3464, RFC 6522
"""
import email
import email.policy
import email.utils
import json
import re
import sys

ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}
STATUS_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
DATE_FIELDS = ("Arrival-Date", "Last-Attempt-Date", "Will-Retry-Until")


class Invalid(Exception):
    pass


def field(block, name):
    """The unfolded value of a field, or None."""
    value = block.get(name)
    if value is None:
        return None
    return " ".join(str(value).split())


def typed(block, name, required=False):
    """The value after "type;" of a typed field, or None."""
    value = field(block, name)
    if value is None:
        if required:
            raise Invalid("missing %s" % name)
        return None
    kind, semi, rest = value.partition(";")
    if not semi or not kind.strip():
        raise Invalid("%s has no type: %r" % (name, value))
    return rest.strip()


def check_dates(block):
    for name in DATE_FIELDS:
        value = field(block, name)
        if value is None:
            continue
        try:
            email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise Invalid("bad %s: %r" % (name, value))


def check_defects(msg):
    for part in msg.walk():
        if part.defects:
            raise Invalid("MIME defects in %s: %s" % (
                part.get_content_type(),
                ", ".join(type(d).__name__ for d in part.defects)))


def recipient(block):
    status = field(block, "Status")
    action = field(block, "Action")
    if action is None or action.lower() not in ACTIONS:
        raise Invalid("bad Action: %r" % action)
    if status is None or not STATUS_RE.match(status):
        raise Invalid("bad Status: %r" % status)
    if block.get("Will-Retry-Until") is not None and \
            action.lower() != "delayed":
        raise Invalid("Will-Retry-Until with Action: %s" % action)
    check_dates(block)
    return {
        "final_recipient": typed(block, "Final-Recipient", True),
        "original_recipient": typed(block, "Original-Recipient"),
        "action": action.lower(),
        "status": status,
        "remote_mta": typed(block, "Remote-MTA"),
        "diagnostic": typed(block, "Diagnostic-Code"),
    }


def report_kind(rcpts):
    actions = {r["action"] for r in rcpts}
    if "failed" in actions:
        return "failed"
    if "delayed" in actions:
        return "delayed"
    return "success"


def original(part, summary):
    ctype = part.get_content_type()
    if ctype == "message/rfc822":
        inner = part.get_payload()[0]
    elif ctype == "text/rfc822-headers":
        inner = email.message_from_string(part.get_payload(),
                                          policy=email.policy.default)
    else:
        raise Invalid("third part is %s" % ctype)
    summary["has_original"] = True
    summary["original_type"] = ctype
    summary["original_message_id"] = field(inner, "Message-ID")
    summary["original_subject"] = field(inner, "Subject")


def strict(raw):
    lines = raw.split(b"\r\n")
    for n, line in enumerate(lines, 1):
        if b"\n" in line or b"\r" in line:
            raise Invalid("line %d: bare CR or LF" % n)
        if len(line) > 998:
            raise Invalid("line %d: %d octets" % (n, len(line)))
    if lines[-1]:
        raise Invalid("last line does not end in CRLF")


def strict_parts(raw, msg):
    """Parts 1 and 2 as they are on the wire, not as re-serialised."""
    delimiter = b"\r\n--" + msg.get_boundary().encode("ascii")
    chunks = raw.split(delimiter)
    for n, chunk in enumerate(chunks[1:3], 1):
        if any(c >= 0x80 for c in chunk):
            raise Invalid("8-bit octets in part %d" % n)


def summarise(raw, is_strict):
    if is_strict:
        strict(raw)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if msg.get_content_type() != "multipart/report":
        raise Invalid("not multipart/report: %s" % msg.get_content_type())
    if (msg.get_param("report-type") or "").lower() != "delivery-status":
        raise Invalid("report-type is not delivery-status")
    check_defects(msg)
    if msg.get("Date") is not None:
        try:
            email.utils.parsedate_to_datetime(str(msg["Date"]))
        except (TypeError, ValueError):
            raise Invalid("bad Date: %r" % str(msg["Date"]))
    parts = msg.get_payload()
    if not isinstance(parts, list) or not 2 <= len(parts) <= 3:
        raise Invalid("multipart/report needs two or three parts")
    if parts[1].get_content_type() != "message/delivery-status":
        raise Invalid("second part is %s" % parts[1].get_content_type())
    if is_strict:
        strict_parts(raw, msg)
    blocks = parts[1].get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise Invalid("delivery-status needs per-recipient fields")
    if typed(blocks[0], "Reporting-MTA") is None:
        raise Invalid("missing Reporting-MTA")
    check_dates(blocks[0])
    rcpts = [recipient(b) for b in blocks[1:]]
    summary = {
        "kind": report_kind(rcpts),
        "envid": field(blocks[0], "Original-Envelope-Id"),
        "reporting_mta": typed(blocks[0], "Reporting-MTA"),
        "queue_id": field(blocks[0], "X-Mxlane-Queue-ID"),
        "recipients": rcpts,
        "has_original": False,
        "original_type": None,
        "original_message_id": None,
        "original_subject": None,
    }
    if len(parts) == 3:
        original(parts[2], summary)
    return summary


def main(argv):
    args = argv[1:]
    is_strict = False
    if args and args[0] == "--strict":
        is_strict = True
        args = args[1:]
    if len(args) != 1:
        print("usage: dsncheck.py [--strict] FILE", file=sys.stderr)
        return 2
    try:
        with open(args[0], "rb") as f:
            raw = f.read()
    except OSError as e:
        print("dsncheck: %s: %s" % (args[0], e.strerror), file=sys.stderr)
        return 2
    try:
        summary = summarise(raw, is_strict)
    except Invalid as e:
        print("dsncheck: %s: %s" % (args[0], e), file=sys.stderr)
        return 1
    except Exception as e:  # the parser choked: not a valid DSN either
        print("dsncheck: %s: cannot parse: %r" % (args[0], e),
              file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
