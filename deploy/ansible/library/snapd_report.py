#!/usr/bin/python3
# snapd_report: the rollout's report, kept on the controller (deploy/ansible/upgrade.yml runs it
# delegated to localhost, one host at a time). Records one host's outcome in DIR/hosts/HOST.json,
# then rewrites DIR/report.json and DIR/report.txt from every host recorded so far, listing the
# hosts of the play not reached (yet) as "not reached". Returns the table as `table`.
#
# A host's row: host, before, after (releases: version+sha256 prefix), worst_blackout_us,
# worst_engine, frames_lost, result (upgraded, skipped, rolled back, failed), reason.
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

COLUMNS = (("HOST", "host"), ("BEFORE", "before"), ("AFTER", "after"),
           ("WORST_BLACKOUT_US", "worst_blackout_us"), ("ENGINE", "worst_engine"),
           ("FRAMES_LOST", "frames_lost"), ("RESULT", "result"))


def table(rows):
    cells = [[str(r[key]) if r.get(key) not in (None, "") else "-" for _, key in COLUMNS] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _) in enumerate(COLUMNS)]
    lines = ["  ".join(h.ljust(widths[i]) for i, (h, _) in enumerate(COLUMNS)).rstrip()]
    for r, c in zip(rows, cells):
        lines.append("  ".join(v.ljust(widths[i]) for i, v in enumerate(c)).rstrip())
        if r.get("reason"):
            lines.append("    " + r["reason"])
    return "\n".join(lines)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", required=True),
            host=dict(type="str", required=True),
            row=dict(type="dict", required=True),
            hosts=dict(type="list", elements="str", default=[]),
            slo_us=dict(type="int", default=0),
        ),
    )
    p = module.params
    hosts_dir = os.path.join(p["dir"], "hosts")
    os.makedirs(hosts_dir, exist_ok=True)
    path = os.path.join(hosts_dir, p["host"] + ".json")
    row = dict(p["row"], host=p["host"])
    for key in ("worst_blackout_us", "frames_lost"):  # figures, though templating made them text
        value = str(row.get(key, "")).strip()
        row[key] = int(value) if value.isdigit() else None
    row["recorded_unix_ms"] = int(time.time() * 1000)
    if os.path.exists(path):  # keep its place in the order it was first reached
        with open(path) as f:
            row["order"] = json.load(f).get("order", 0)
    else:
        row["order"] = len(os.listdir(hosts_dir)) + 1
    with open(path + ".tmp", "w") as f:
        json.dump(row, f, indent=1, sort_keys=True)
    os.rename(path + ".tmp", path)

    rows = []
    for name in os.listdir(hosts_dir):
        if name.endswith(".json"):
            with open(os.path.join(hosts_dir, name)) as f:
                rows.append(json.load(f))
    rows.sort(key=lambda r: (r.get("order", 0), r["host"]))
    seen = {r["host"] for r in rows}
    rows += [{"host": h, "result": "not reached"} for h in p["hosts"] if h not in seen]
    summary = {
        "slo_us": p["slo_us"],
        "hosts": rows,
        "upgraded": sum(1 for r in rows if r.get("result") == "upgraded"),
        "skipped": sum(1 for r in rows if r.get("result") == "skipped"),
        "failed": [r["host"] for r in rows
                   if r.get("result") == "rolled back" or r.get("result", "").startswith("failed")],
        "not_reached": [r["host"] for r in rows if r.get("result") == "not reached"],
        "worst_blackout_us": max([int(r.get("worst_blackout_us") or 0) for r in rows] + [0]),
        "frames_lost": sum(int(r.get("frames_lost") or 0) for r in rows),
    }
    text = table(rows)
    for name, content in (("report.json", json.dumps(summary, indent=1, sort_keys=True) + "\n"),
                          ("report.txt", text + "\n")):
        tmp = os.path.join(p["dir"], name + ".tmp")
        with open(tmp, "w") as f:
            f.write(content)
        os.rename(tmp, os.path.join(p["dir"], name))
    module.exit_json(changed=True, table=text, report=summary)


if __name__ == "__main__":
    main()
