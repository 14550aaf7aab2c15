# Reading JSON in shell, `snapctl --json` output above all: tests/lib.sh sources this for the tests,
# and tools/benchmarks/*.sh and tools/demo source it on its own (it only defines functions: no
# shell options, traps or files). Python 3 evaluates; the document is bound to `d`.
#
#   ctl_json EXPR     reads one JSON document on stdin and prints the Python expression EXPR of d:
#                       pid=$(ctl --json info | ctl_json 'd["pid"]')
#                     A tuple prints on one line, its items separated by spaces; a list prints one
#                     line per item; a dict (or a list inside a list or tuple) prints as JSON;
#                     anything else as Python's str() (so True/False, None).
#                       ctl --json engines | ctl_json '[(e["name"], e["stats"]["frames"]) for e in d["engines"]]'
#   json_check EXPR   reads one JSON document on stdin; succeeds if EXPR of d is true, else prints
#                     the expression and the document to stderr and fails. With check (lib.sh):
#                       check "app 2 is attached" json_check 'find(d["apps"], id=2)["attached"]' < <(ctl --json apps)
#
# Besides d, EXPR may use find(ITEMS, KEY=VALUE...): the first item of the list ITEMS (of objects)
# whose every KEY equals VALUE, an error naming them if there is none:
#   find(d["groups"], name="default")["mode"]
# Either fails (a message on stderr, no output) when stdin is not JSON or EXPR raises (a missing
# key, say). Both are exported, so that a `bash -c "..."` in a check can use them.

_json_eval() {  # MODE EXPR: MODE is print (ctl_json) or check (json_check)
  python3 -c '
import json, sys
mode, expr = sys.argv[1], sys.argv[2]
name = "ctl_json" if mode == "print" else "json_check"
text = sys.stdin.read()
try:
    d = json.loads(text)
except ValueError as e:
    sys.exit(f"{name}: stdin is not a JSON document ({e}): {text[:200]!r}")

def find(items, **want):
    for x in items:
        if all(x.get(k) == v for k, v in want.items()):
            return x
    raise LookupError("find: no item with " + ", ".join(f"{k}={v!r}" for k, v in want.items()))

def fail(why):
    sys.exit(f"{name}: {expr}: {why}\n  the document: {json.dumps(d)}")

try:
    v = eval(expr, {"d": d, "find": find, "json": json})
except Exception as e:
    fail(f"{type(e).__name__}: {e}")
if mode == "check":
    if not v:
        fail("not true")
    sys.exit(0)

def fmt(x):
    if isinstance(x, (dict, list)):
        return json.dumps(x)
    if isinstance(x, tuple):
        return " ".join(fmt(y) for y in x)
    return str(x)

for line in (v if isinstance(v, list) else [v]):
    print(fmt(line))
' "$1" "$2"
}
ctl_json() { _json_eval print "$1"; }
json_check() { _json_eval check "$1"; }
export -f _json_eval ctl_json json_check
