#include "vmxcap.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace vmxcap {
namespace {

bool Bit(uint64_t v, unsigned b) { return (v >> b) & 1; }

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Printf(const char* fmt, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

std::string_view NameOf(std::span<const Control> controls, unsigned bit) {
  for (const Control& c : controls)
    if (c.bit == bit) return c.name;
  return "";
}

std::string Vendor(const exitstats::CpuidFn& cpuid) {
  exitstats::Regs r = cpuid(0, 0);
  char v[13] = {};
  std::memcpy(v, &r.ebx, 4);
  std::memcpy(v + 4, &r.edx, 4);
  std::memcpy(v + 8, &r.ecx, 4);
  return v;
}

const char* YesNo(bool b) { return b ? "yes" : "no"; }

// The AMD half of the report: no VMX, but say what SVM offers.
void AppendSvm(const exitstats::CpuidFn& cpuid, std::string& out) {
  if (cpuid(0x80000000, 0).eax < 0x8000000A || !Bit(cpuid(0x80000001, 0).ecx, 2)) {
    out += "SVM: absent too (CPUID 0x80000001 ECX bit 2 clear)\n";
    return;
  }
  exitstats::Regs r = cpuid(0x8000000A, 0);
  out += Printf("SVM feature leaf CPUID 0x8000000A: EAX=0x%08x EBX=0x%08x EDX=0x%08x\n",
                r.eax, r.ebx, r.edx);
  out += Printf("  SVM revision: %u\n  number of ASIDs: %u\n", r.eax & 0xFF, r.ebx);
  for (const Control& c : SvmFeatures())
    out += Printf("  EDX bit %2u  %-28.*s %s\n", c.bit, static_cast<int>(c.name.size()),
                  c.name.data(), YesNo(Bit(r.edx, c.bit)));
}

}  // namespace

Basic DecodeBasic(uint64_t v) {
  return Basic{
      .revision = static_cast<uint32_t>(v & 0x7FFFFFFF),
      .vmcs_size = static_cast<uint32_t>((v >> 32) & 0x1FFF),
      .phys_addr_32 = Bit(v, 48),
      .dual_monitor = Bit(v, 49),
      .memory_type = static_cast<uint32_t>((v >> 50) & 0xF),
      .ins_outs_info = Bit(v, 54),
      .true_controls = Bit(v, 55),
      .no_error_code_ok = Bit(v, 56),
  };
}

std::vector<BitCap> DecodeField(const ControlField& field, uint64_t value,
                                std::optional<uint64_t> true_value) {
  std::vector<BitCap> out;
  const unsigned width = field.allowed1_only ? 64 : 32;
  for (unsigned b = 0; b < width; b++) {
    BitCap cap{b, NameOf(field.controls, b), true, false, false};
    if (field.allowed1_only) {
      cap.can_be_1 = Bit(value, b);
    } else {
      const bool must_be_1 = Bit(value, b);
      const bool true_must_be_1 = true_value ? Bit(*true_value, b) : must_be_1;
      // Allowed-1 comes from the TRUE MSR too when there is one (SDM A.3.1:
      // its high half equals the non-TRUE one's; use it so a mismatch shows).
      const bool may_be_1 = Bit(true_value.value_or(value), 32 + b);
      cap.can_be_0 = !true_must_be_1;
      cap.can_be_1 = may_be_1;
      cap.default1 = must_be_1 && !true_must_be_1;
    }
    // Reserved bits that must be 0 say nothing; everything else is reported.
    if (!cap.name.empty() || cap.can_be_1 || !cap.can_be_0) out.push_back(cap);
  }
  return out;
}

Report MakeReport(const exitstats::CpuidFn& cpuid, const MsrReader& read_msr) {
  Report rep{Report::Status::kOk, ""};
  std::string& out = rep.text;
  const std::string vendor = Vendor(cpuid);
  const bool vmx = Bit(cpuid(1, 0).ecx, 5);
  out += Printf("CPU vendor: %s; CPUID.1:ECX.VMX[bit 5] = %d\n", vendor.c_str(), vmx ? 1 : 0);
  if (!vmx) {
    out += "VMX: absent (this CPU does not offer Intel VMX; there are no VMX capability MSRs to read)\n";
    if (vendor == "AuthenticAMD" || vendor == "HygonGenuine") AppendSvm(cpuid, out);
    rep.status = Report::Status::kVmxAbsent;
    return rep;
  }

  // Reads one MSR or records why the report stops.
  auto must_read = [&](uint32_t index, std::string_view name) -> std::optional<uint64_t> {
    auto v = read_msr(index);
    if (!v) {
      out += Printf("cannot read %.*s (MSR 0x%x): no /dev/cpu/0/msr (CONFIG_X86_MSR, root)?\n",
                    static_cast<int>(name.size()), name.data(), index);
      rep.status = Report::Status::kMsrUnreadable;
    }
    return v;
  };

  if (auto fc = read_msr(msr::kFeatureControl)) {
    out += Printf("IA32_FEATURE_CONTROL (0x3a) = %s: lock %s, VMX outside SMX %s\n",
                  Hex(*fc).c_str(), YesNo(Bit(*fc, 0)), YesNo(Bit(*fc, 2)));
  }
  auto basic_v = must_read(msr::kBasic, "IA32_VMX_BASIC");
  if (!basic_v) return rep;
  const Basic basic = DecodeBasic(*basic_v);
  out += Printf("IA32_VMX_BASIC (0x480) = %s\n", Hex(*basic_v).c_str());
  out += Printf("  VMCS revision identifier: 0x%x\n", basic.revision);
  out += Printf("  VMCS region size: %u bytes\n", basic.vmcs_size);
  out += Printf("  physical addresses limited to 32 bits: %s\n", YesNo(basic.phys_addr_32));
  out += Printf("  dual-monitor treatment of SMIs: %s\n", YesNo(basic.dual_monitor));
  out += Printf("  VMCS memory type: %u%s\n", basic.memory_type,
                basic.memory_type == 6 ? " (write-back)" : basic.memory_type == 0 ? " (uncacheable)" : "");
  out += Printf("  INS/OUTS instruction information: %s\n", YesNo(basic.ins_outs_info));
  out += Printf("  TRUE capability MSRs 0x48D-0x490 (bit 55): %s\n", YesNo(basic.true_controls));
  out += Printf("  hardware exceptions without error code: %s\n", YesNo(basic.no_error_code_ok));

  std::optional<uint64_t> primary;
  for (const ControlField& f : Fields()) {
    std::string_view why;
    if (f.msr == msr::kProcbased2 && !(primary && Bit(*primary, 32 + 31)))
      why = "primary control 31 (activate secondary controls) cannot be 1";
    if (f.msr == msr::kProcbased3 && !(primary && Bit(*primary, 32 + 17)))
      why = "primary control 17 (activate tertiary controls) cannot be 1";
    out += Printf("\n%.*s\n", static_cast<int>(f.title.size()), f.title.data());
    if (!why.empty()) {
      out += Printf("  not available: %.*s\n", static_cast<int>(why.size()), why.data());
      continue;
    }
    auto v = must_read(f.msr, f.msr_name);
    if (!v) return rep;
    if (f.msr == msr::kProcbased) primary = v;
    std::optional<uint64_t> tv;
    out += Printf("  %.*s (0x%x) = %s", static_cast<int>(f.msr_name.size()), f.msr_name.data(),
                  f.msr, Hex(*v).c_str());
    if (f.true_msr && basic.true_controls) {
      tv = must_read(f.true_msr, "TRUE control MSR");
      if (!tv) return rep;
      out += Printf("; TRUE (0x%x) = %s", f.true_msr, Hex(*tv).c_str());
      // The primary field's availability checks use the allowed-1 half, which
      // is the same in both MSRs.
    }
    out += "\n";
    out += Printf("  %-4s %-42s %-9s %-9s\n", "bit", "control", "can be 0", "can be 1");
    for (const BitCap& c : DecodeField(f, *v, tv)) {
      std::string name = c.name.empty() ? "(reserved)" : std::string(c.name);
      if (c.default1) name += " [default1]";
      out += Printf("  %-4u %-42s %-9s %-9s\n", c.bit, name.c_str(), YesNo(c.can_be_0),
                    YesNo(c.can_be_1));
    }
  }
  return rep;
}

}  // namespace vmxcap
