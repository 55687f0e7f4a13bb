#!/usr/bin/env bash
# L1 backend for QEMU (AMD SVM under TCG -cpu max, or KVM with nesting).
#
# The backend contract (ci/lib/run-bochs.sh implements the same one for
# --vmx): boot KERNEL with INITRD and APPEND as L1 with VCPUS and MEM, give
# L1 the directory SHARE as its results folder, write the serial console to
# CONSOLE, kill everything after TIMEOUT seconds, and return:
#   0   L1 ran to its end (its stages say whether they passed)
#   124 timed out (killed)
#   125 L1 stopped responding: its init's heartbeat (SHARE/stages/heartbeat,
#       every 5 s) was older than --heartbeat-loss seconds (default 60), so
#       the backend saved every vCPU's registers from the QEMU monitor,
#       L1's answer to SysRq l, w and t on its console, and the console
#       tail to SHARE/logs/l1-hang.txt (l1_hang_evidence.py) and killed it
#   other: the emulator failed.
# On return SHARE holds what L1's init wrote (stages/, logs/, junit/,
# l2-*/), however it got there. The backend also writes
# SHARE/stages/l1-boot.host: host seconds from start until L1's init had
# the results folder mounted (the "L1 boot" stage).
#
# usage: run-qemu.sh --kernel F --initrd F --append S --share DIR
#                    --console F --vcpus N --mem MB --accel kvm|tcg
#                    --timeout S [--machine pc|q35|microvm] [--verbose]
#                    [--heartbeat-loss S]   (0: never end a run for it)
set -uo pipefail
# One brace group: bash reads it whole before running it, so editing this
# file during a run cannot break that run.
{
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck disable=SC2034  # read by common.sh\'s log and die
ci_name=run-qemu

kernel= initrd= append= share= console= vcpus=4 mem=2048 accel=tcg timeout=1800
machine=pc verbose=0 hb_loss=${CI_L1_HEARTBEAT_LOSS:-60}
while [ $# -gt 0 ]; do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --initrd) initrd=$2; shift 2 ;;
    --append) append=$2; shift 2 ;;
    --share) share=$2; shift 2 ;;
    --console) console=$2; shift 2 ;;
    --vcpus) vcpus=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --accel) accel=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --machine) machine=$2; shift 2 ;;
    --verbose) verbose=1; shift ;;
    --heartbeat-loss) hb_loss=$2; shift 2 ;;
    # What it cannot honour it refuses, never drops (ctest ci.backend_options):
    --build-dir) die 2 "--build-dir: the QEMU backend builds no image, it boots the --initrd it is given" ;;
    --user-append) die 2 "--user-append: the QEMU backend boots one kernel command line; put the words in --append" ;;
    *) die 2 "unknown argument $1" ;;
  esac
done

case $accel in
  # MTTCG: one host thread per L1 vCPU, so L1's vCPUs really run in parallel
  # (the concurrency tests need that; DESIGN measured lost updates with it).
  # CI_TCG_THREAD=single: one host thread for every vCPU (a diagnostic: no
  # emulator race can happen, and no real parallelism either).
  tcg) accel_args=(-accel "tcg,thread=${CI_TCG_THREAD:-multi},tb-size=256" -cpu max) ;;
  kvm) accel_args=(-accel kvm -cpu host) ;;
  *) die 2 "bad --accel $accel" ;;
esac
# pc (i440fx): under TCG a microvm L1 hangs at boot ("tsc: Unable to
# calibrate against PIT", no HPET/PM timer to calibrate against); pc has both
# and reaches /init in ~3 s. microvm stays selectable for KVM hosts.
case $machine in
  pc|q35) machine_args=(-M "$machine"); p9dev=virtio-9p-pci ;;
  microvm) machine_args=(-M microvm,rtc=on); p9dev=virtio-9p-device ;;
  *) die 2 "bad --machine $machine" ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$share/stages" "$share/logs"
rm -f "$share/stages/l1-boot.host" "$share/stages/heartbeat" "$share/logs/l1-hang.txt"
: > "$console"
# The QEMU monitor (QMP), for the registers of an L1 that stops responding. Its
# own short directory: a unix socket path must fit in 108 bytes.
mon_dir=$(mktemp -d "${TMPDIR:-/tmp}/l1mon.XXXXXX")
trap 'rm -rf "$mon_dir"' EXIT
mon=$mon_dir/monitor.sock

cmd=(qemu-system-x86_64 "${machine_args[@]}" "${accel_args[@]}"
     -smp "$vcpus" -m "$mem" -nodefaults -no-user-config -display none -no-reboot
     -kernel "$kernel" -initrd "$initrd" -append "$append"
     -fsdev "local,id=results,path=$share,security_model=none"
     -device "$p9dev,fsdev=results,mount_tag=results"
     -qmp "unix:$mon,server=on,wait=off")
# The serial console: a telnet socket nobody reads until L1 hangs (then a
# telnet BREAK there is a serial break, and with the next key a SysRq:
# l1_hang_evidence.py), logged to CONSOLE whether or not anyone is connected.
con_sock=$mon_dir/console.sock
cmd+=(-chardev "socket,id=con,path=$con_sock,server=on,wait=off,telnet=on,logfile=$console"
      -serial chardev:con)
log "${cmd[*]}"
if [ $verbose = 1 ]; then
  tail -n +1 -F "$console" 2>/dev/null &
  tail_pid=$!
  trap 'kill $tail_pid 2>/dev/null; rm -rf "$mon_dir"' EXIT
fi

t0=$(ci_now)
# --kill-after: a QEMU that ignores SIGTERM still dies.
timeout --kill-after=10 "$timeout" "${cmd[@]}" < /dev/null &
pid=$!
# Poll L1's stage marks (cheap, and it needs no cooperation from the
# console): print each one as it appears, and every 60 s without a new mark
# say which stage L1 is in and the console's last line.
# Progress goes to fd 3 when the caller opened it (nested-run: its own
# stderr, while this script's stderr is the backend log), else to stderr.
if { true >&3; } 2>/dev/null; then progress() { echo "$*" >&3; }; else progress() { echo "$*" >&2; }; fi
declare -A seen=()
last_news=$t0
while kill -0 "$pid" 2>/dev/null; do
  if [ ! -e "$share/stages/l1-boot.host" ] && [ -e "$share/stages/l1-boot.end" ]; then
    echo "$(ci_since "$t0")" > "$share/stages/l1-boot.host"
    progress "nested-run: L1 booted after $(cat "$share/stages/l1-boot.host")s"
    last_news=$(ci_now)
  fi
  for f in "$share"/stages/*.start "$share"/stages/*.end "$share"/stages/*.lost; do
    [ -e "$f" ] || continue
    b=${f##*/}
    case $b in l1-boot.*) continue ;; esac
    sig=$b:$(stat -c %s "$f")
    [ -n "${seen[$sig]:-}" ] && continue
    seen[$sig]=1
    case $b in
      *.start) progress "nested-run: L1 stage ${b%.start} started" ;;
      *.end) read -r erc esecs _ < "$f"
             progress "nested-run: L1 stage ${b%.end} ended: rc=$erc after ${esecs}s" ;;
      *.lost) progress "nested-run: L1 stage ${b%.lost}: attempt lost ($(tail -n1 "$f")); L1 repeats it unless tests had failed or retries are used up" ;;
    esac
    last_news=$(ci_now)
  done
  # ci/l2-soak: one row per L2 boot.
  if [ -f "$share/soak/runs.tsv" ]; then
    rows=$(($(wc -l < "$share/soak/runs.tsv") - 1))
    if [ "$rows" -gt "${soak_rows:-0}" ]; then
      soak_rows=$rows
      progress "nested-run: soak boot $rows: $(tail -n1 "$share/soak/runs.tsv" | cut -f1-4 | tr '\t' ' ')"
      last_news=$(ci_now)
    fi
  fi
  # The heartbeat: L1's init rewrites it every 5 s once the share is
  # mounted. A kernel that deadlocks or wedges every vCPU stops it; the
  # kernel's own detectors report partial hangs on the console.
  hb=$share/stages/heartbeat
  if [ "$hb_loss" != 0 ] && [ -e "$hb" ] &&
     [ $(($(date +%s) - $(stat -c %Y "$hb" 2>/dev/null || date +%s))) -ge "$hb_loss" ]; then
    el=$(ci_since "$t0" 0)
    progress "nested-run: L1 stopped responding: no heartbeat for ${hb_loss}s (L1 uptime $(cat "$hb") at the last one, ${el}s in); saving its registers and ending it"
    {
      echo "L1 heartbeat lost: none for ${hb_loss}s; last one at L1 uptime $(cat "$hb")s, ${el}s after QEMU started"
      python3 "$here/l1_hang_evidence.py" "$mon" "$con_sock" "$console" \
        "${kernel%/arch/x86/boot/bzImage}/System.map" 2>&1
    } > "$share/logs/l1-hang.txt"
    kill "$pid" 2>/dev/null
    wait "$pid"
    exit 125
  fi
  if [ "$(ci_since "$last_news" 0)" -ge 60 ]; then
    cur=$(ls -t "$share"/stages/*.start 2>/dev/null | head -n1)
    [ -n "$cur" ] && [ -e "${cur%.start}.end" ] && cur=
    cur=${cur##*/}
    line=$(tr -d '\r' < "$console" | grep -v '^[[:space:]]*$' | tail -n1 | cut -c1-120)
    el=$(ci_since "$t0" 0)
    if [ -n "$cur" ]; then what="stage ${cur%.start} to end"; else what="L1 to boot or to start its next stage"; fi
    progress "nested-run: L1 running ${el}s of ${timeout}s; waiting for $what; console: $line"
    last_news=$(ci_now)
  fi
  sleep 0.5
done
wait "$pid"
rc=$?
[ $rc = 137 ] && rc=124   # killed after the grace period: still a timeout
exit $rc
}
