# shellcheck shell=sh
# The shared part of the L1 images' /init scripts (POSIX sh, busybox ash):
# ci/images/l1-init, ci/bochs/guest-init and ci/sanitizers/hostile-init
# source it as /lib/init-lib.sh. The image builders copy it in
# (ci/images/build-l1, ci/bochs/build-iso, ci/sanitizers/hostile-run).
#
# What it gives:
#   init_mounts              devtmpfs, console as stdio, proc, sys, /tmp, debugfs
#   results_open MODE        R=/results: 9p (the host's share, tag "results"),
#                            tar:/dev/X (a tar stream after every stage), com2
#                            (tmpfs, streamed to /dev/ttyS1 by results_close)
#   results_close            the l1-done mark, flush, unmount or send
#   stage_start / stage_end  the marks R/stages/<stage>.start and .end
#                            ("rc seconds limit"), the kmsg marks scan-klog
#                            attributes kernel reports by, a console line
#   run_steps FILE           the step table: one line a stage,
#                              NAME LIMIT COMMAND...
#                            COMMAND is a shell function of the init (it
#                            keeps its own logs and timeout and sets rc) or a
#                            shell command run under `timeout LIMIT` with its
#                            output in STEP_LOGS/NAME.log; either way the
#                            stage gets its marks
#   stage_hostile            hostile_test on this L1's KVM (both inits that
#                            run it)
#   now, secs_since, hit_limit, say
#
# The init sets before sourcing: INIT_NAME (prefix of its console lines).
# It may set after: STEP_LOGS (default R/logs), STEP_TAIL (lines of a
# command step's log shown on the console, default 15), KMSG_SEQ=0 (no kmsg
# sequence files: each costs a second of guest time), and redefine
# on_stage_start NAME / on_stage_end NAME RC SECS LIMIT (the console lines a
# host parses).

INIT_NAME=${INIT_NAME:-init}
R=/results
KMSG_SEQ=1
say() { echo "$INIT_NAME: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
# secs_since T0: seconds from T0 to now, one decimal.
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# hit_limit T0 LIMIT: true if LIMIT seconds have passed since T0. busybox
# `timeout` returns the child's status, and QEMU exits 0 on SIGTERM: the
# clock, not the exit code, says whether the limit was hit.
hit_limit() { awk -v a="$1" -v b="$(now)" -v l="$2" 'BEGIN { exit !(b - a >= l - 1) }'; }

init_mounts() {
  mount -t devtmpfs dev /dev 2>/dev/null
  # The kernel opened /dev/console for init's stdio before devtmpfs was
  # mounted; without a console node in the image init has no stdio yet.
  exec </dev/console >/dev/console 2>&1
  mount -t proc proc /proc
  mount -t sysfs sys /sys
  mkdir -p /tmp
  mount -t tmpfs tmp /tmp
  mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
}

flush() { :; }
results_open() {
  results_mode=$1
  mkdir -p $R
  case $results_mode in
    9p)
      if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 results $R; then
        say "FATAL: cannot mount the 9p results share (tag 'results')"
        dmesg | tail -n 30
        reboot -f
      fi ;;
    tar:*)
      outdev=${results_mode#tar:}
      flush() { tar -cf "$outdev" -C $R . && sync; } ;;
    com2)
      # Bochs (the Intel VMX path) has no virtio: the results stay in L1's
      # memory and leave on the second serial port at the end
      # (send-results; ci/bochs/extract-results reads them back).
      mount -t tmpfs results $R ;;
  esac
  mkdir -p $R/stages $R/logs $R/junit
  now > $R/stages/l1-boot.end
}

# results_close: after the last stage. Under com2 the results leave on
# /dev/ttyS1 (ci/images/send-results: the framing, and why a serial port).
results_close() {
  now > $R/stages/l1-done
  flush; sync
  case $results_mode in
    9p) umount $R ;;
    com2)
      out=$(send-results $R /dev/ttyS1)
      say "${out#send-results: }" ;;
  esac
}
# init_end: Bochs ends on ACPI power-off (a reboot would boot the ISO
# again); QEMU runs with -no-reboot, so a reboot ends it.
init_end() {
  say "done after $(now) s"
  [ "$results_mode" = com2 ] && poweroff -f
  reboot -f
}

# kmsg_seq TEXT: the sequence number of the last kernel log record that is
# TEXT. Sequence numbers count every record, so the difference between a
# stage's begin and end marks is how much the kernel logged in between,
# even when the ring buffer wrapped (the verdict's log-flood check).
kmsg_seq() {
  # A read that a flood overtakes ends early (EPIPE): try again.
  for _ in 1 2 3; do
    seq=$( (timeout 1 cat /dev/kmsg |
            awk -F'[,;]' -v t="$1" '$NF == t { s = $2 } END { print s + 0 }') 2>/dev/null)
    [ "$seq" != 0 ] && break
  done
  echo "$seq"
}
on_stage_start() { say "STAGE $1 start"; }
on_stage_end() { say "STAGE $1 end rc=$2 after ${3}s"; }
stage_start() {
  now > "$R/stages/$1.start"
  echo "kvm-exit-stats: stage $1 begin" > /dev/kmsg
  [ "$KMSG_SEQ" = 1 ] && kmsg_seq "kvm-exit-stats: stage $1 begin" > "$R/stages/$1.kmsg"
  on_stage_start "$1"
}
# stage_end NAME RC T0 LIMIT
stage_end() {
  secs=$(secs_since "$3")
  echo "$2 $secs $4" > "$R/stages/$1.end"
  echo "kvm-exit-stats: stage $1 end" > /dev/kmsg
  [ "$KMSG_SEQ" = 1 ] && kmsg_seq "kvm-exit-stats: stage $1 end" >> "$R/stages/$1.kmsg"
  on_stage_end "$1" "$2" "$secs" "$4"
  flush; sync
}

# run_steps FILE: every line "NAME LIMIT COMMAND..." (blank and # lines
# skipped), in order. The table is read on fd 3, so a stage that reads its
# stdin cannot eat the lines after it.
run_steps() {
  while read -r step_name step_limit step_cmd <&3; do
    case $step_name in ''|'#'*) continue ;; esac
    stage_start "$step_name"
    step_t0=$(now)
    case $(type "${step_cmd%% *}" 2>/dev/null) in
      *function*) is_fn=1 ;;
      *) is_fn=0 ;;
    esac
    if [ $is_fn = 1 ]; then
      rc=0
      eval "$step_cmd"
    else
      timeout "$step_limit" sh -c "$step_cmd" > "${STEP_LOGS:-$R/logs}/$step_name.log" 2>&1
      rc=$?
      hit_limit "$step_t0" "$step_limit" && rc=124
      [ "${STEP_TAIL:-15}" = 0 ] || tail -n "${STEP_TAIL:-15}" "${STEP_LOGS:-$R/logs}/$step_name.log"
    fi
    stage_end "$step_name" "$rc" "$step_t0" "$step_limit"
  done 3< "$1"
}

# stage_hostile: hostile_test (stress/hostile: fuzz of every leaf,
# isolation, VM churn, bad conditions) against this L1's KVM, limit
# step_limit, knobs from hostile_env (K=V,K=V), gtest filter
# hostile_filter; JUnit in junit/hostile.xml, log in logs/hostile.log.
# shellcheck disable=SC2154  # hostile_env, hostile_filter: the init's
stage_hostile() {
  if [ -x /opt/tests/hostile_test ]; then
    mkdir -p $R/hostile
    (
      # shellcheck disable=SC2163  # each kv is K=V: export it as written
      for kv in $(echo "$hostile_env" | tr ',' ' '); do export "$kv"; done
      export HOSTILE_RESULTS=$R/hostile
      # Victims for the kill test: the image carries harness_test when built.
      [ -x /opt/tests/harness_test ] && export HOSTILE_VICTIMS=/opt/tests/harness_test
      exec timeout "$step_limit" /opt/tests/hostile_test --gtest_filter="${hostile_filter:-*}" \
        --gtest_output=xml:$R/junit/hostile.xml
    ) > $R/logs/hostile.log 2>&1
    rc=$?
    hit_limit "$step_t0" "$step_limit" && rc=124
  else
    echo "$INIT_NAME: hostile_test is not in the image (not built)" > $R/logs/hostile.log
    rc=127
  fi
  tail -n 25 $R/logs/hostile.log
}
