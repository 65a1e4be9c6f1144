#!/usr/bin/python3
# jsonlines.py SCHEMA FILE EXPR
# Checks that every line of FILE is one JSON object valid under the JSON
# schema SCHEMA (python3-jsonschema), then prints the Python expression
# EXPR evaluated with L, the list of those objects, and by_id, a dict
# from queue_id to object (mailq --json, queuerun list --json). Exit 1,
# with the line and the reason on stderr, at the first invalid line.
import json, sys

import jsonschema

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
jsonschema.Draft202012Validator.check_schema(schema)
L = []
with open(sys.argv[2], "rb") as f:
    for n, raw in enumerate(f, 1):
        try:
            text = raw.decode("utf-8")
            if not text.endswith("\n"):
                raise ValueError("no newline at the end")
            obj = json.loads(text)
            validator.validate(obj)
        except Exception as e:
            sys.stderr.write("line %d: %s\n%r\n" % (n, e, raw))
            sys.exit(1)
        L.append(obj)
by_id = {o.get("queue_id"): o for o in L}
print(eval(sys.argv[3]))
