#!/usr/bin/env bash
# qemu-smoke.sh: runs exit_stress in a throw-away Linux guest (QEMU microvm
# on KVM if /dev/kvm works, else pc on TCG) with any bzImage: first --dry-run (do the
# triggers work in this guest?), then the real run (on an unpatched host it
# must report the leaves absent and exit 77). Prints both exit statuses as
# "SMOKE dry-run=N run=M".
#
# usage: qemu-smoke.sh --kernel BZIMAGE --binary EXIT_STRESS [--msr-ko FILE]
#                      [--smp N] [--cpu MODEL] [--accel kvm|tcg] [-- EXIT_STRESS_ARGS...]
# --msr-ko: msr.ko for kernels with CONFIG_X86_MSR=m (e.g. Debian's; extract
# it from the linux-image .deb). Default: -accel kvm -cpu host if /dev/kvm
# is writable, else -accel tcg -cpu max.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../../ci/images/image-lib.sh"

kernel= binary= msrko= smp=2 cpu= accel=
while [ $# -gt 0 ]; do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --msr-ko) msrko=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --accel) accel=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "qemu-smoke: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$kernel" ] && [ -n "$binary" ] || { echo "usage: qemu-smoke.sh --kernel BZIMAGE --binary EXIT_STRESS" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/exit-stress-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
stage_busybox "$root"
copy_with_libs "$root" "$binary" /bin/exit_stress
[ -z "$msrko" ] || install -m 0644 "$msrko" "$root/msr.ko"
cat > "$root/init" <<EOF
#!/bin/sh
mount -t devtmpfs dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
[ -f /msr.ko ] && insmod /msr.ko
echo "smoke: \$(nproc) vCPUs, \$(grep -m1 'model name' /proc/cpuinfo)"
/bin/exit_stress --dry-run $*
d=\$?
/bin/exit_stress --json /tmp/s.json $*
r=\$?
echo "SMOKE dry-run=\$d run=\$r"
sleep 1
poweroff -f
EOF
chmod +x "$root/init"
pack_cpio "$root" "$work/initrd" gzip

if [ -z "$accel" ]; then accel=tcg; [ -w /dev/kvm ] && accel=kvm; fi
cpu=${cpu:-$([ $accel = kvm ] && echo host || echo max)}
# microvm under TCG cannot calibrate the TSC (ci/nested-run): pc there.
machine=microvm
[ "$accel" = kvm ] || machine=pc
timeout 300 qemu-system-x86_64 -M "$machine" -accel "$accel" -cpu "$cpu" -smp "$smp" -m 512 \
  -kernel "$kernel" -initrd "$work/initrd" -nodefaults -no-user-config -nographic \
  -serial stdio -append "console=ttyS0 earlyprintk=ttyS0 panic=-1 loglevel=4" -no-reboot
