#!/usr/bin/env python3
"""A service manager that is not systemd, for snapd's crash survival (docs/operations.md,
"Surviving a crash"): the least a supervisor must do for snapd's apps to keep their connections
across a crash, and what tests/snapd_supervisor_test runs snapd under.

    supervisor.py NOTIFY_SOCKET LOG -- SNAPD ARGS...

It starts SNAPD with $NOTIFY_SOCKET, and on that datagram socket keeps the fds snapd sends with
FDSTORE=1 under their FDNAME= (an fd it holds already, the same open file, is not added again),
drops a name's fds on FDSTOREREMOVE=1, and drops a stored socket that hangs up. When snapd dies
(a signal, or an exit status other than 0) it starts it again at once, with the kept fds from fd 3
on and $LISTEN_FDS, $LISTEN_FDNAMES and $LISTEN_PID. When snapd exits with 0 (a clean stop) the
supervisor ends. It does not follow MAINPID= (a live upgrade's new snapd is not its child: a
supervisor that allows upgrades must be its subreaper, as systemd is). What it does goes to LOG, a
line each.
"""
import ctypes
import fcntl
import os
import resource
import select
import signal
import socket
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_KCMP, _KCMP_FILE = 312, 0  # x86_64
_PR_SET_PDEATHSIG = 1


def same_file(a, b):
    """Whether fds a and b are the same open file (kcmp(2), as systemd checks)."""
    pid = os.getpid()
    return _libc.syscall(_SYS_KCMP, pid, pid, _KCMP_FILE, a, b) == 0


def main():
    notify_path, log_path = sys.argv[1], sys.argv[2]
    command = sys.argv[sys.argv.index("--") + 1:]
    log = open(log_path, "a", buffering=1)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    store = {}  # name -> [fd, ...]
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)

    def keep(name, fds):
        for fd in fds:
            if any(same_file(fd, held) for kept in store.values() for held in kept):
                os.close(fd)  # held already, under this name or another
                continue
            store.setdefault(name, []).append(fd)
            poller.register(fd, 0)  # POLLHUP and POLLERR are always reported

    def drop(name):
        for fd in store.pop(name, []):
            poller.unregister(fd)
            os.close(fd)

    def spawn():
        names, fds = [], []
        for name, held in store.items():
            for fd in held:
                names.append(name)
                fds.append(fd)
        pid = os.fork()
        if pid == 0:
            try:
                # Dies with the supervisor (a test that fails kills it).
                _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
                # Above anything in the way first, then to 3, 4, ... (inheritable).
                floor = max(fds + [2 + len(fds)]) + 1
                high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in fds]
                for i, fd in enumerate(high):
                    os.dup2(fd, 3 + i, inheritable=True)
                env = dict(os.environ, NOTIFY_SOCKET=notify_path)
                if fds:
                    env.update(LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=":".join(names),
                               LISTEN_PID=str(os.getpid()))
                os.execve(command[0], command, env)
            finally:
                os._exit(127)
        log.write(f"started {pid} with {len(fds)} stored fd(s)\n")
        return pid

    def read_one():
        data, ancillary, flags, _ = sock.recvmsg(4096, socket.CMSG_SPACE(253 * 4),
                                                 socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT)
        if flags & socket.MSG_CTRUNC:
            log.write("a message's fds did not all fit: some are lost\n")
        fds = []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(memoryview(payload).cast("i"))
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        name = fields.get("FDNAME", "stored")
        if fields.get("FDSTORE") == "1":
            keep(name, fds)
            fds = []
        elif fields.get("FDSTOREREMOVE") == "1":
            drop(name)
        for fd in fds:
            os.close(fd)
        for key in ("READY", "STOPPING", "MAINPID"):
            if key in fields:
                log.write(f"{key}={fields[key]}\n")

    def read_all():  # what snapd said before it died, before it is started again
        while True:
            try:
                read_one()
            except BlockingIOError:
                return

    # Room for many apps' fds (snapd raises its own limit the same way).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    main_pid = spawn()
    while True:
        for fd, events in poller.poll(50):
            if fd != sock.fileno():
                # A stored socket hung up (an app went away): it is dropped, as systemd does.
                for name, held in list(store.items()):
                    if fd in held:
                        held.remove(fd)
                        poller.unregister(fd)
                        os.close(fd)
                        log.write(f"dropped a hung-up fd of {name}\n")
                        if not held:
                            del store[name]
                continue
            read_all()
        pid, status = os.waitpid(main_pid, os.WNOHANG)
        if pid == 0:
            continue
        read_all()
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            log.write("snapd stopped cleanly\n")
            return 0
        how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"status {os.WEXITSTATUS(status)}")
        kept = sum(len(v) for v in store.values())
        log.write(f"snapd {pid} died ({how}); restarting with {kept} stored fd(s)\n")
        main_pid = spawn()


if __name__ == "__main__":
    sys.exit(main())
