# Filters for deploy/ansible/upgrade.yml: the gate a host must pass after its live upgrade, and how a
# release is named in the report. Pure functions of library/snapd_facts.py's output, so that
# tests/fleet_gate_test.py checks them without a fleet.

# The counters that count frames snapd failed to deliver: toward an app whose ring was full, dropped
# while an app's port changed hands, missed by a NIC or short of buffers. (Engines' `drops` also
# counts what policy drops, a frame to no one, and so is not a loss.)
LOSS_COUNTERS = ("/tx_dropped", "/drop_takeover", "/rx_missed", "/rx_nombuf")


def snapd_release(facts):
    """"0.3.0+1a2b3c4d5e": the version snapd reports and the start of its binary's sha256."""
    if not facts or not facts.get("serving"):
        return "-"
    return "%s+%s" % (facts.get("version", "?"), (facts.get("exe_sha256") or "?")[:10])


def snapd_lost(before, after):
    """Frames snapd counted as not delivered between the two readings, and which counters."""
    lost, parts = 0, []
    b, a = before.get("counters", {}), after.get("counters", {})
    for key in sorted(a):
        if key.endswith(LOSS_COUNTERS):
            d = a[key] - b.get(key, 0)
            if d > 0:
                lost += d
                parts.append("%s +%d" % (key, d))
    return lost, parts


def snapd_gate(before, after, new_sha256, slo_us, max_frames_lost=0):
    """Whether a host's upgrade went as it must. Returns a dict:
    ok, failures (each a sentence naming the engine, app or counter and the figure), blackouts
    ({engine: us}), worst_blackout_us, worst_engine, frames_lost."""
    slo_us, max_frames_lost = int(slo_us), int(max_frames_lost)
    failures = []
    result = {"ok": False, "failures": failures, "blackouts": {}, "worst_blackout_us": 0,
              "worst_engine": "", "frames_lost": 0}
    if not after or not after.get("serving"):
        failures.append("snapd is not serving after the upgrade: %s" %
                        ((after or {}).get("error") or (after or {}).get("health") or "no answer"))
        return result
    if after.get("exe_sha256") != new_sha256:
        failures.append("snapd (pid %s) runs %s, not the new binary %s" %
                        (after.get("pid"), (after.get("exe_sha256") or "?")[:10], new_sha256[:10]))
    last = after.get("last_upgrade") or {}
    if int(last.get("new_pid", 0)) != after.get("pid") or int(last.get("old_pid", 0)) != before.get("pid"):
        failures.append("snapd (pid %s) was not started by a live upgrade from pid %s (its last "
                        "upgrade: %s -> %s)" % (after.get("pid"), before.get("pid"),
                                                last.get("old_pid", "none"), last.get("new_pid", "none")))
    if after.get("restarts", 0) != before.get("restarts", 0):
        failures.append("snapd restarted after a crash meanwhile (restarts %d -> %d)" %
                        (before.get("restarts", 0), after.get("restarts", 0)))
    elif after.get("upgrades", 0) != before.get("upgrades", 0) + 1:
        failures.append("snapd counts %d live upgrade(s) since it first started, %d before: not one more" %
                        (after.get("upgrades", 0), before.get("upgrades", 0)))
    moved = {m.get("name", ""): int(m.get("blackout_us", 0)) for m in last.get("engines", [])}
    result["blackouts"] = moved
    for obj in before.get("objects", []):
        if obj not in after.get("objects", []):
            kind, name = obj.split("/", 1)
            failures.append("%s %s: there before the upgrade, gone after" % (kind[:-1], name))
    engines = sorted(o.split("/", 1)[1] for o in before.get("objects", []) if o.startswith("engines/"))
    for name in engines:
        if name not in moved:
            failures.append("engine %s: not moved by the upgrade" % name)
    by_blackout = sorted(moved.items(), key=lambda kv: -kv[1])  # the worst first
    if by_blackout:
        result["worst_engine"], result["worst_blackout_us"] = by_blackout[0]
    for name, us in by_blackout:
        if us > slo_us:
            failures.append("engine %s: blackout %d us, over the SLO of %d us" % (name, us, slo_us))
    b, a = before.get("counters", {}), after.get("counters", {})
    for name in before.get("busy_engines", []):
        key = "engines/%s/frames" % name
        if name in engines and a.get(key, 0) <= b.get(key, 0):
            failures.append("engine %s: carried traffic before the upgrade, none since (frames %d -> %d)" %
                            (name, b.get(key, 0), a.get(key, 0)))
    pids = after.get("app_pids", {})
    for app in before.get("apps_attached", []):
        if app not in after.get("apps_attached", []):
            failures.append("app %d: attached before the upgrade, not after" % app)
        elif str(app) in before.get("app_pids", {}) and pids.get(str(app)) != before["app_pids"][str(app)]:
            failures.append("app %d: attached again (pid %s -> %s): it noticed the upgrade" %
                            (app, before["app_pids"][str(app)], pids.get(str(app))))
    for key in sorted(b):
        if "/".join(key.split("/")[:2]) in after.get("objects", []) and a.get(key, 0) < b[key]:
            failures.append("counter %s: went back from %d to %d" % (key, b[key], a.get(key, 0)))
    lost, parts = snapd_lost(before, after)
    result["frames_lost"] = lost
    if lost > max_frames_lost:
        failures.append("%d frame(s) lost, more than %d (%s)" % (lost, max_frames_lost, ", ".join(parts)))
    result["ok"] = not failures
    return result


class FilterModule(object):
    def filters(self):
        return {"snapd_gate": snapd_gate, "snapd_release": snapd_release, "snapd_lost": snapd_lost}
