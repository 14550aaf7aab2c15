#!/usr/bin/python3
# snapd_facts: what a rollout needs to know of the snapd on this host, read with snapctl --json
# (deploy/ansible/upgrade.yml runs it before and after each host's upgrade; filter_plugins/snapd.py
# compares the two). Reads only; never changes the host.
#
# Returns `snapd`:
#   serving      the gRPC health check said SERVING
#   pid, version, build      the running process (snapctl info)
#   exe_sha256   sha256 of the running process's binary (/proc/PID/exe: right even after the file
#                at its path was replaced), what "already on this release" is decided by
#   apps_attached            the ids of the apps attached now, sorted; app_pids: {id: pid}
#   counters     every engine, port and NIC counter (not gauges), flat: "engines/NAME/frames": N
#   objects      every engine, port and NIC: "engines/NAME"
#   busy_engines the engines that carried traffic when read (frames per second above 0)
#   installed_sha256, prev_present, prev_sha256   with sbin_dir: the installed binary, and a
#                rollout's snapd.prev if one is there
#   last_upgrade the upgrade that started this process, as it saw it (absent if none did)
#   upgrades, restarts       the service's, since it first started
# Fails (with snapctl's own words) only if snapctl cannot be run at all; a snapd that does not
# answer is `serving: false` with `error` saying why.
import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule


def snapctl(module, snapctl_path, socket, *args):
    cmd = [snapctl_path, "--socket=" + socket, "--timeout_s=10"] + list(args)
    rc, out, err = module.run_command(cmd)
    return rc, out, err.strip()


# The counters of the v1 API (control/proto/snapd.proto) that only ever grow, by kind of object.
# Gauges (queueing delay, busy share, rates, link speed) are left out: they may go either way.
COUNTERS = {
    "engines": ("frames", "bytes", "batches", "polls", "empty_polls", "drops"),
    "ports": ("rx_frames", "rx_bytes", "tx_frames", "tx_bytes", "tx_dropped", "rx_errors",
              "drop_malformed", "drop_spoofed", "drop_takeover", "drop_oversize"),
    "nics": ("rx_frames", "tx_frames", "rx_missed", "rx_errors", "tx_errors", "rx_nombuf",
             "rx_bytes", "tx_bytes", "rx_wait_ns"),
}


def counters_of(stats):
    """{"engines/sw0/frames": N, ...} for every object of the stats; a counter JSON leaves out is 0
    (protobuf's JSON omits zeros, and prints 64-bit integers as strings)."""
    flat, objects = {}, []
    for kind, names in COUNTERS.items():
        for obj in stats.get(kind, []):
            name = "%s/%s" % (kind, obj.get("name", "?"))
            objects.append(name)
            fields = dict(obj)
            fields.update(obj.get("stats", {}))
            for key in names:
                flat["%s/%s" % (name, key)] = int(fields.get(key, 0) or 0)
    return flat, sorted(objects)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            snapctl=dict(type="str", required=True),
            socket=dict(type="str", required=True),
            # Where snapd is installed: then also the installed binary's sha256 and whether a
            # rollout's snapd.prev is there (a rollout that did not finish on this host).
            sbin_dir=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    path, socket = module.params["snapctl"], module.params["socket"]
    facts = {"serving": False}
    sbin = module.params["sbin_dir"]
    if sbin:
        try:
            facts["installed_sha256"] = sha256_of(os.path.join(sbin, "snapd"))
        except OSError:
            facts["installed_sha256"] = ""
        facts["prev_present"] = os.path.exists(os.path.join(sbin, "snapd.prev"))
        try:
            facts["prev_sha256"] = sha256_of(os.path.join(sbin, "snapd.prev")) if facts["prev_present"] else ""
        except OSError:
            facts["prev_sha256"] = ""
    try:
        rc, out, err = snapctl(module, path, socket, "health")
    except OSError as e:
        module.fail_json(msg="cannot run %s: %s" % (path, e))
    facts["health"] = out.strip() or err
    if rc != 0 or out.strip() != "SERVING":
        facts["error"] = "health: " + (out.strip() or err)
        module.exit_json(changed=False, snapd=facts)
    docs = {}
    for what in ("info", "apps", "stats"):
        rc, out, err = snapctl(module, path, socket, "--json", what)
        if rc != 0:
            facts["error"] = "%s: %s" % (what, err)
            module.exit_json(changed=False, snapd=facts)
        try:
            docs[what] = json.loads(out)
        except ValueError as e:
            facts["error"] = "%s: not JSON (%s)" % (what, e)
            module.exit_json(changed=False, snapd=facts)
    info = docs["info"]
    facts["serving"] = True
    facts["pid"] = int(info.get("pid", 0))
    facts["version"] = info.get("version", "")
    facts["build"] = info.get("build", "")
    facts["upgrades"] = int(info.get("upgrades", 0))
    facts["restarts"] = int(info.get("restarts", 0))
    facts["last_upgrade"] = info.get("last_upgrade")
    try:
        facts["exe_sha256"] = sha256_of("/proc/%d/exe" % facts["pid"])
    except OSError as e:
        facts["exe_sha256"] = ""
        facts["error"] = "cannot read snapd's binary (pid %d): %s" % (facts["pid"], e)
    apps = [a for a in docs["apps"].get("apps", []) if a.get("attached")]
    facts["apps_attached"] = sorted(int(a.get("id", 0)) for a in apps)
    # Which process holds each app: one that attached again (a new connection) may have a new one.
    facts["app_pids"] = {str(a.get("id", 0)): int(a.get("pid", 0)) for a in apps}
    facts["counters"], facts["objects"] = counters_of(docs["stats"])
    # Engines that carried traffic when read: their frames must go on growing after the upgrade.
    facts["busy_engines"] = sorted(
        e.get("name", "?") for e in docs["stats"].get("engines", [])
        if float(e.get("stats", {}).get("frames_per_s", 0) or 0) > 0)
    module.exit_json(changed=False, snapd=facts)


if __name__ == "__main__":
    main()
