"""The rollout's gate (deploy/ansible/filter_plugins/snapd.py) on readings made up to fail each way
it must, and to pass: what a host reports after its upgrade decides whether the rollout goes on."""
import copy
import importlib.util
import os
import sys
import unittest


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    rel = "deploy/ansible/filter_plugins/snapd.py"
    for path in (os.path.join(os.environ.get("RUNFILES_DIR", "/nonexistent"), "snapd", rel),
                 os.path.join(os.environ.get("TEST_SRCDIR", "/nonexistent"), "snapd", rel),
                 os.path.join(here, "..", rel)):
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location("snapd_filters", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    sys.exit("cannot find " + rel)


F = _load()
NEW = "b" * 64
OBJECTS = ["engines/echo0", "engines/sw0", "nics/nic0", "ports/app2", "ports/app3"]
BEFORE = {
    "serving": True, "pid": 100, "version": "0.3.0", "exe_sha256": "a" * 64, "upgrades": 3, "restarts": 0,
    "apps_attached": [1, 2, 3], "app_pids": {"1": 11, "2": 12, "3": 13}, "busy_engines": ["sw0"],
    "objects": OBJECTS,
    "counters": {"engines/sw0/frames": 1000, "engines/echo0/frames": 500,
                 "ports/app2/tx_dropped": 4, "ports/app3/drop_takeover": 0, "nics/nic0/rx_missed": 7},
}
AFTER = {
    "serving": True, "pid": 200, "version": "0.3.0", "exe_sha256": NEW, "upgrades": 4, "restarts": 0,
    "apps_attached": [1, 2, 3], "app_pids": {"1": 11, "2": 12, "3": 13}, "busy_engines": ["sw0"],
    "objects": OBJECTS,
    "counters": {"engines/sw0/frames": 1300, "engines/echo0/frames": 500,
                 "ports/app2/tx_dropped": 4, "ports/app3/drop_takeover": 0, "nics/nic0/rx_missed": 7},
    "last_upgrade": {"old_pid": 100, "new_pid": 200,
                     "engines": [{"name": "sw0", "blackout_us": "800"}, {"name": "echo0", "blackout_us": "300"}]},
}


def after(**changes):
    a = copy.deepcopy(AFTER)
    for key, value in changes.items():
        a[key] = value
    return a


class GateTest(unittest.TestCase):
    def gate(self, a, slo=1000, lost=0):
        return F.snapd_gate(BEFORE, a, NEW, slo, lost)

    def test_a_good_upgrade_passes(self):
        g = self.gate(AFTER)
        self.assertTrue(g["ok"], g["failures"])
        self.assertEqual((g["worst_blackout_us"], g["worst_engine"], g["frames_lost"]), (800, "sw0", 0))
        self.assertEqual(g["blackouts"], {"sw0": 800, "echo0": 300})

    def test_a_blackout_over_the_slo_names_the_engine_and_figure(self):
        g = self.gate(AFTER, slo=500)
        self.assertFalse(g["ok"])
        self.assertEqual(g["failures"], ["engine sw0: blackout 800 us, over the SLO of 500 us"])

    def test_an_engine_not_moved_fails(self):
        a = after(last_upgrade=dict(AFTER["last_upgrade"], engines=[{"name": "sw0", "blackout_us": "10"}]))
        self.assertIn("engine echo0: not moved by the upgrade", self.gate(a)["failures"])

    def test_an_app_lost_fails(self):
        g = self.gate(after(apps_attached=[1, 3]))
        self.assertEqual(g["failures"], ["app 2: attached before the upgrade, not after"])

    def test_an_app_that_attached_meanwhile_is_fine(self):
        self.assertTrue(self.gate(after(apps_attached=[1, 2, 3, 4]))["ok"])

    def test_a_counter_that_went_back_fails(self):
        c = dict(AFTER["counters"], **{"engines/echo0/frames": 10})
        self.assertEqual(self.gate(after(counters=c))["failures"],
                         ["counter engines/echo0/frames: went back from 500 to 10"])

    def test_a_port_gone_fails(self):
        c = {k: v for k, v in AFTER["counters"].items() if not k.startswith("ports/app3/")}
        g = self.gate(after(counters=c, objects=[o for o in OBJECTS if o != "ports/app3"]))
        self.assertEqual(g["failures"], ["port app3: there before the upgrade, gone after"])

    def test_an_engine_whose_traffic_stopped_fails(self):
        c = dict(AFTER["counters"], **{"engines/sw0/frames": 1000})
        self.assertEqual(self.gate(after(counters=c))["failures"],
                         ["engine sw0: carried traffic before the upgrade, none since (frames 1000 -> 1000)"])

    def test_an_idle_engine_need_not_move_frames(self):
        self.assertTrue(self.gate(AFTER)["ok"])  # echo0: 500 -> 500, idle before

    def test_an_app_that_attached_again_fails(self):
        g = self.gate(after(app_pids={"1": 11, "2": 99, "3": 13}))
        self.assertEqual(g["failures"], ["app 2: attached again (pid 12 -> 99): it noticed the upgrade"])

    def test_a_crash_restart_meanwhile_fails(self):
        g = self.gate(after(restarts=1))
        self.assertEqual(g["failures"], ["snapd restarted after a crash meanwhile (restarts 0 -> 1)"])

    def test_more_than_one_upgrade_meanwhile_fails(self):
        g = self.gate(after(upgrades=5))
        self.assertEqual(g["failures"], ["snapd counts 5 live upgrade(s) since it first started, 3 before: not one more"])

    def test_frames_lost_are_counted_and_gated(self):
        c = dict(AFTER["counters"], **{"ports/app2/tx_dropped": 9, "nics/nic0/rx_missed": 8})
        g = self.gate(after(counters=c))
        self.assertEqual(g["frames_lost"], 6)
        self.assertEqual(g["failures"], ["6 frame(s) lost, more than 0 (nics/nic0/rx_missed +1, ports/app2/tx_dropped +5)"])
        self.assertTrue(self.gate(after(counters=c), lost=6)["ok"])

    def test_not_serving_fails_at_once(self):
        g = self.gate({"serving": False, "error": "health: NOT_SERVING"})
        self.assertEqual(g["failures"], ["snapd is not serving after the upgrade: health: NOT_SERVING"])

    def test_the_old_binary_still_running_fails(self):
        g = self.gate(after(exe_sha256="a" * 64))
        self.assertEqual(g["failures"], ["snapd (pid 200) runs aaaaaaaaaa, not the new binary bbbbbbbbbb"])

    def test_a_process_not_started_by_this_upgrade_fails(self):
        # A snapd that crashed and was restarted: a new pid, but no upgrade from the old one.
        a = after(last_upgrade=None)
        self.assertTrue(any("was not started by a live upgrade from pid 100" in f for f in self.gate(a)["failures"]))

    def test_release_names(self):
        self.assertEqual(F.snapd_release(AFTER), "0.3.0+bbbbbbbbbb")
        self.assertEqual(F.snapd_release({"serving": False}), "-")


if __name__ == "__main__":
    unittest.main()
