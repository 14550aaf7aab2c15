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
#   apps_attached            the ids of the apps attached now, sorted
#   counters     every engine, port and NIC counter, flat: "engines/NAME/frames": N
#   last_upgrade the upgrade that started this process, as it saw it (absent if none did)
#   upgrades, restarts       the service's, since it first started
# Fails (with snapctl's own words) only if snapctl cannot be run at all; a snapd that does not
# answer is `serving: false` with `error` saying why.
import hashlib
import json
import subprocess

from ansible.module_utils.basic import AnsibleModule


def snapctl(module, snapctl_path, socket, *args):
    cmd = [snapctl_path, "--socket=" + socket, "--timeout_s=10"] + list(args)
    rc, out, err = module.run_command(cmd)
    return rc, out, err.strip()


def counters_of(stats):
    flat = {}
    for kind in ("engines", "ports", "nics"):
        for obj in stats.get(kind, []):
            fields = dict(obj)
            fields.update(obj.get("stats", {}))
            for key, value in fields.items():
                # JSON carries 64-bit counters as strings; booleans and names are not counters.
                if isinstance(value, bool):
                    continue
                if isinstance(value, (int, str)) and str(value).isdigit():
                    flat["%s/%s/%s" % (kind, obj.get("name", "?"), key)] = int(value)
    return flat


def main():
    module = AnsibleModule(
        argument_spec=dict(
            snapctl=dict(type="str", required=True),
            socket=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    path, socket = module.params["snapctl"], module.params["socket"]
    facts = {"serving": False}
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
        digest = hashlib.sha256()
        with open("/proc/%d/exe" % facts["pid"], "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        facts["exe_sha256"] = digest.hexdigest()
    except OSError as e:
        facts["exe_sha256"] = ""
        facts["error"] = "cannot read snapd's binary (pid %d): %s" % (facts["pid"], e)
    facts["apps_attached"] = sorted(
        int(a.get("id", 0)) for a in docs["apps"].get("apps", []) if a.get("attached"))
    facts["counters"] = counters_of(docs["stats"])
    module.exit_json(changed=False, snapd=facts)


if __name__ == "__main__":
    main()
