# Accelerator choice for L0's QEMU (sourced).
#
# KVM is only useful for L1 if L1 can itself run KVM guests: /dev/kvm must be
# usable AND the CPU flags must show VMX or SVM AND the vendor module must
# have nesting on. A /dev/kvm without VMX/SVM (a paravirtual KVM such as the
# one these build machines have) runs L1 fine but L1 gets no SVM/VMX, so
# kvm_amd/kvm_intel would not load in L1: then TCG -cpu max it is, which
# emulates AMD SVM with nested paging.

# ci_kvm_nesting_reason: prints why KVM nesting is unusable, or nothing.
ci_kvm_nesting_reason() {
  local cpuinfo=${CI_CPUINFO:-/proc/cpuinfo} sysmod=${CI_SYSMODULE:-/sys/module}
  local dev=${CI_KVM_DEV:-/dev/kvm} flags nested vendor
  [ -c "$dev" ] || { echo "$dev does not exist"; return; }
  [ -r "$dev" ] && [ -w "$dev" ] || { echo "$dev is not read/writable by $(id -un)"; return; }
  flags=$(grep -m1 '^flags' "$cpuinfo" 2>/dev/null || true)
  if [[ " $flags " == *" vmx "* ]]; then vendor=intel
  elif [[ " $flags " == *" svm "* ]]; then vendor=amd
  else echo "$cpuinfo has neither vmx nor svm (KVM here cannot nest)"; return; fi
  nested=$(cat "$sysmod/kvm_$vendor/parameters/nested" 2>/dev/null || echo missing)
  case $nested in
    1|Y|y) ;;
    *) echo "kvm_$vendor nested=$nested (want 1/Y: modprobe kvm_$vendor nested=1)" ;;
  esac
}

# ci_pick_accel auto|kvm|tcg: prints kvm or tcg; `kvm` forced without
# nesting is honoured (the user asked) but warned about.
ci_pick_accel() {
  local want=$1 why
  why=$(ci_kvm_nesting_reason)
  case $want in
    auto) if [ -z "$why" ]; then echo kvm; else echo tcg; fi ;;
    kvm) [ -z "$why" ] || echo "nested-run: WARNING: --accel kvm forced but $why" >&2; echo kvm ;;
    tcg) echo tcg ;;
    *) return 2 ;;
  esac
}
