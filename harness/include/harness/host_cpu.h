// What the VMM must know about the CPU its KVM runs on.
#pragma once

namespace harness {

// Whether guests must use VMMCALL (AMD, Hygon) rather than VMCALL (Intel).
// The hypercall instruction must match the KVM vendor module: the other one
// is a #UD that KVM answers by patching or emulating the instruction, an
// exit the guest did not ask for. The environment variable `override_env`
// (vmcall|vmmcall) decides for KVM modules that are neither (e.g. kvm_pvm).
bool HypercallIsVmmcall(const char* override_env = "HARNESS_HYPERCALL");

}  // namespace harness
