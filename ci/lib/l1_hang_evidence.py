#!/usr/bin/env python3
"""What the host can still learn from an L1 that stopped responding
(ci/lib/run-qemu.sh calls it when L1's heartbeat stops, then ends L1).

usage: l1_hang_evidence.py QMP_SOCKET CONSOLE_SOCKET CONSOLE_LOG [SYSTEM_MAP]

Prints, in this order:
  1. every vCPU's registers from the QEMU monitor (QMP: clean text, unlike
     the HMP prompt's echo), each RIP named from System.map when the kernel
     tree has one: the state at the hang, taken before anything disturbs it;
  2. L1's own answer to magic SysRq l, w and t (every active CPU's
     backtrace by NMI, the blocked tasks, every task), asked on its serial
     console: QEMU's console is a telnet socket, and a telnet BREAK (IAC
     BRK) there is a serial break, which the kernel's 8250 driver
     (CONFIG_MAGIC_SYSRQ_SERIAL) takes with the next character as a SysRq
     command. The answer goes to the console, so it is read back from
     CONSOLE_LOG (QEMU's logfile of that chardev). No answer at all means no
     vCPU takes interrupts any more, which is evidence too;
  3. the console's last lines before the SysRq.
The kernel log scan (ci/sanitizers/scan-klog) reads the NMI backtraces in
the console log and attributes them to the patch when the RIP or the top
frames are the patch's, as it does for an oops.
"""
import bisect
import json
import os
import re
import socket
import sys
import threading
import time

SYSRQ_KEYS = "lwt"          # backtrace of active CPUs, blocked tasks, all tasks
ANSWER_WAIT = 4.0           # seconds for one key's answer to start
QUIET_END = 1.5             # ... and to stop growing
TAIL_LINES = 40


def registers(qmp_path, system_map):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(qmp_path)
    f = s.makefile("rw")

    def call(cmd, **args):
        f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                return r.get("return", r.get("error"))

    json.loads(f.readline())  # greeting
    call("qmp_capabilities")
    out = call("human-monitor-command", **{"command-line": "info registers -a"})
    syms = []
    try:
        with open(system_map) as m:
            for line in m:
                a, t, name = line.split()[:3]
                if t in "tTwW":
                    syms.append((int(a, 16), name))
        syms.sort()
    except (OSError, TypeError, ValueError):
        pass
    named = []
    for n, rip in enumerate(re.findall(r"RIP=([0-9a-f]{16})", out)):
        i = bisect.bisect_right(syms, (int(rip, 16), "~")) - 1
        if i >= 0:
            named.append(f"CPU#{n} RIP {rip} is in {syms[i][1]}+{int(rip, 16) - syms[i][0]:#x}")
    return "\n".join(named + [out])


def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def answered(log, start):
    """Whether the log grew past start within ANSWER_WAIT; if it did, returns
    once it has been still for QUIET_END (at most 30 s in all)."""
    t0 = time.monotonic()
    while size(log) <= start:
        if time.monotonic() - t0 > ANSWER_WAIT:
            return False
        time.sleep(0.2)
    last, still = size(log), time.monotonic()
    while time.monotonic() - still < QUIET_END and time.monotonic() - t0 < 30:
        time.sleep(0.2)
        if size(log) != last:
            last, still = size(log), time.monotonic()
    return True


def sysrq(console_path, log):
    """[(key, answered?)] after asking each key; the answer is in the log."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(0.2)
    s.connect(console_path)
    # Read everything QEMU sends this client, all along: an unread socket
    # fills, and then L1's serial port (and its answer) stalls.
    done = threading.Event()

    def drain():
        while not done.is_set():
            try:
                if not s.recv(1 << 16):
                    return
            except socket.timeout:
                pass
            except OSError:
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    got = []
    try:
        for key in SYSRQ_KEYS:
            before = size(log)
            s.sendall(b"\xff\xf3")          # telnet IAC BRK: a serial break
            time.sleep(0.2)
            s.sendall(key.encode())
            got.append((key, answered(log, before)))
    finally:
        done.set()
        reader.join(1)
        s.close()
    return got


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    qmp, con, log = argv[1:4]
    smap = argv[4] if len(argv) == 5 else None
    print("--- QEMU monitor: info registers -a")
    try:
        print(registers(qmp, smap))
    except (OSError, ValueError) as e:
        print(f"(the monitor did not answer: {e})")
    before_sysrq = size(log)
    print(f"--- SysRq {', '.join(SYSRQ_KEYS)} on L1's serial console "
          "(a telnet BREAK, then the key)")
    try:
        got = sysrq(con, log)
        for key, ok in got:
            print(f"sysrq {key}: " + ("answered" if ok else
                                     f"no answer within {ANSWER_WAIT:.0f}s"))
        if not any(ok for _, ok in got):
            print("no vCPU answered: every one has interrupts off or is wedged "
                  "(the registers above say where)")
    except OSError as e:
        print(f"(the console socket did not take the SysRq: {e})")
    with open(log, "rb") as f:
        raw = f.read()
    head, answer = (b.decode("utf-8", "replace").replace("\r", "")
                    for b in (raw[:before_sysrq], raw[before_sysrq:]))
    if answer.strip():
        print(answer.rstrip("\n"))
    print(f"--- L1 console, last {TAIL_LINES} lines before the SysRq")
    print("\n".join(head.rstrip("\n").split("\n")[-TAIL_LINES:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
