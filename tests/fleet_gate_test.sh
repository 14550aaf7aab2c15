#!/usr/bin/env bash
# Runs fleet_gate_test.py with the system's python3 (Bazel 4.2.3's py_test wants a `python`).
exec python3 "$(dirname "$0")/fleet_gate_test.py" "$@"
