// Decoding tests on synthetic MSR values. The values are shaped like a real
// Skylake-X (and Bochs' corei7_skylake_x) report, so each test names the bug
// that would make it fail.
#include "vmxcap.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>

namespace vmxcap {
namespace {

// A CPU model: CPUID answers plus an MSR file that records what was read.
struct FakeCpu {
  std::string vendor = "GenuineIntel";
  bool vmx = true;
  bool svm = false;
  uint32_t svm_edx = 0;
  std::map<uint32_t, uint64_t> msrs;
  mutable std::set<uint32_t> reads;

  exitstats::CpuidFn Cpuid() const {
    return [this](uint32_t leaf, uint32_t) {
      exitstats::Regs r;
      if (leaf == 0) {
        std::memcpy(&r.ebx, vendor.data(), 4);
        std::memcpy(&r.edx, vendor.data() + 4, 4);
        std::memcpy(&r.ecx, vendor.data() + 8, 4);
      } else if (leaf == 1) {
        r.ecx = vmx ? 1u << 5 : 0;
      } else if (leaf == 0x80000000) {
        r.eax = 0x8000001F;
      } else if (leaf == 0x80000001) {
        r.ecx = svm ? 1u << 2 : 0;
      } else if (leaf == 0x8000000A) {
        r = {1, 16, 0, svm_edx};
      }
      return r;
    };
  }
  MsrReader Reader() const {
    return [this](uint32_t index) -> std::optional<uint64_t> {
      reads.insert(index);
      auto it = msrs.find(index);
      if (it == msrs.end()) return std::nullopt;  // #GP -> EIO
      return it->second;
    };
  }
};

// IA32_VMX_BASIC: revision 4, 4 KiB VMCS, write-back, INS/OUTS info, TRUE.
constexpr uint64_t kBasicTrue = (1ull << 55) | (1ull << 54) | (6ull << 50) | (0x1000ull << 32) | 4;
constexpr uint64_t kBasicNoTrue = kBasicTrue & ~(1ull << 55);
// Primary: CR3-load/store (15, 16) default1 in the plain MSR, free in TRUE.
constexpr uint64_t kProc = 0xfff9fffe0401e172ull;
constexpr uint64_t kTrueProc = 0xfff9fffe04006172ull;
constexpr uint64_t kProcNoSecondary = kProc & ~(1ull << (32 + 31));
constexpr uint64_t kPin = 0x0000007f00000016ull;
constexpr uint64_t kSecondary = 0x0053ffff00000000ull;

FakeCpu Skylake(uint64_t basic = kBasicTrue, uint64_t proc = kProc) {
  FakeCpu c;
  c.msrs = {{msr::kBasic, basic},         {msr::kPinbased, kPin},
            {msr::kProcbased, proc},      {msr::kExit, 0x01ffffff00036dffull},
            {msr::kEntry, 0x0003ffff000011ffull}, {msr::kProcbased2, kSecondary},
            {msr::kTruePinbased, kPin},   {msr::kTrueProcbased, kTrueProc},
            {msr::kTrueExit, 0x01ffffff00036dfbull}, {msr::kTrueEntry, 0x0003ffff000011fbull}};
  return c;
}

const BitCap& Find(const std::vector<BitCap>& caps, unsigned bit) {
  for (const BitCap& c : caps)
    if (c.bit == bit) return c;
  static BitCap none{};
  ADD_FAILURE() << "bit " << bit << " not reported";
  return none;
}

TEST(DecodeBasic, Fields) {
  // Catches a shifted or mis-sized field.
  Basic b = DecodeBasic(kBasicTrue);
  EXPECT_EQ(b.revision, 4u);
  EXPECT_EQ(b.vmcs_size, 0x1000u);
  EXPECT_EQ(b.memory_type, 6u);
  EXPECT_TRUE(b.ins_outs_info);
  EXPECT_TRUE(b.true_controls);
  EXPECT_FALSE(b.phys_addr_32);
  EXPECT_FALSE(DecodeBasic(kBasicNoTrue).true_controls);
  // Bit 31 of the revision field is always 0 (SDM A.1): not part of it.
  EXPECT_EQ(DecodeBasic(0x80000004ull).revision, 4u);
}

TEST(DecodeField, LowHalfIsMustBeOneHighHalfIsMayBeOne) {
  // Catches halves swapped or the sense of a half inverted.
  auto caps = DecodeField(Field(msr::kPinbased), kPin);
  const BitCap& ext = Find(caps, 0);  // External-interrupt exiting: free
  EXPECT_EQ(ext.name, "External-interrupt exiting");
  EXPECT_TRUE(ext.can_be_0);
  EXPECT_TRUE(ext.can_be_1);
  const BitCap& r1 = Find(caps, 1);  // reserved, default1: must be 1
  EXPECT_TRUE(r1.name.empty());
  EXPECT_FALSE(r1.can_be_0);
  EXPECT_TRUE(r1.can_be_1);
  const BitCap& pi = Find(caps, 7);  // posted interrupts: 0x7f has no bit 7
  EXPECT_TRUE(pi.can_be_0);
  EXPECT_FALSE(pi.can_be_1);
}

TEST(DecodeField, TrueMsrReplacesAllowedZero) {
  // Catches ignoring the TRUE MSR: CR3-load exiting is default1 but may be 0.
  const auto& f = Field(msr::kProcbased);
  const BitCap plain = Find(DecodeField(f, kProc), 15);
  EXPECT_EQ(plain.name, "CR3-load exiting");
  EXPECT_FALSE(plain.can_be_0);
  const BitCap with_true = Find(DecodeField(f, kProc, kTrueProc), 15);
  EXPECT_TRUE(with_true.can_be_0);
  EXPECT_TRUE(with_true.can_be_1);
  EXPECT_TRUE(with_true.default1);
  // A bit the TRUE MSR still requires stays "must be 1" (bit 1, reserved).
  EXPECT_FALSE(Find(DecodeField(f, kProc, kTrueProc), 1).can_be_0);
}

TEST(DecodeField, TertiaryIsAllowedOneOnly) {
  // Catches decoding the 64-bit tertiary MSR as a low/high pair.
  auto caps = DecodeField(Field(msr::kProcbased3), (1ull << 4) | (1ull << 40));
  EXPECT_TRUE(Find(caps, 4).can_be_1);   // IPI virtualization
  EXPECT_TRUE(Find(caps, 4).can_be_0);
  EXPECT_FALSE(Find(caps, 0).can_be_1);  // LOADIWKEY exiting
  EXPECT_TRUE(Find(caps, 40).can_be_1);  // reserved but advertised: reported
}

TEST(DecodeField, ReservedMustBeZeroBitsAreOmitted) {
  auto caps = DecodeField(Field(msr::kPinbased), kPin);
  for (const BitCap& c : caps) EXPECT_NE(c.bit, 20u) << "bit 20 is reserved and must be 0";
}

TEST(Tables, NamesAreUniqueAndInRange) {
  for (const ControlField& f : Fields()) {
    std::set<unsigned> bits;
    for (const Control& c : f.controls) {
      EXPECT_TRUE(bits.insert(c.bit).second) << f.title << " bit " << c.bit << " twice";
      EXPECT_LT(c.bit, f.allowed1_only ? 64u : 32u);
    }
  }
  EXPECT_EQ(Field(msr::kProcbased2).controls[1].name, "Enable EPT");
}

TEST(MakeReport, ReadsTrueMsrsOnlyWhenAdvertised) {
  // Catches reading 0x48D-0x490 on a CPU without them (#GP on hardware).
  FakeCpu cpu = Skylake(kBasicNoTrue);
  Report rep = MakeReport(cpu.Cpuid(), cpu.Reader());
  EXPECT_EQ(rep.status, Report::Status::kOk) << rep.text;
  for (uint32_t m : {msr::kTruePinbased, msr::kTrueProcbased, msr::kTrueExit, msr::kTrueEntry})
    EXPECT_EQ(cpu.reads.count(m), 0u) << std::hex << m;
  EXPECT_NE(rep.text.find("TRUE capability MSRs 0x48D-0x490 (bit 55): no"), std::string::npos);

  FakeCpu cpu2 = Skylake(kBasicTrue);
  Report rep2 = MakeReport(cpu2.Cpuid(), cpu2.Reader());
  EXPECT_EQ(cpu2.reads.count(msr::kTrueProcbased), 1u);
  EXPECT_NE(rep2.text.find("CR3-load exiting [default1]"), std::string::npos) << rep2.text;
}

TEST(MakeReport, SecondaryAndTertiaryFollowPrimary) {
  // Catches reading 0x48B / 0x492 when the primary controls cannot enable them.
  FakeCpu cpu = Skylake(kBasicTrue, kProcNoSecondary);
  cpu.msrs[msr::kTrueProcbased] = kTrueProc & ~(1ull << (32 + 31));
  Report rep = MakeReport(cpu.Cpuid(), cpu.Reader());
  EXPECT_EQ(rep.status, Report::Status::kOk) << rep.text;
  EXPECT_EQ(cpu.reads.count(msr::kProcbased2), 0u);
  EXPECT_EQ(cpu.reads.count(msr::kProcbased3), 0u);
  EXPECT_NE(rep.text.find("primary control 31 (activate secondary controls) cannot be 1"),
            std::string::npos);

  FakeCpu cpu2 = Skylake();
  cpu2.msrs[msr::kProcbased] |= 1ull << (32 + 17);
  cpu2.msrs[msr::kTrueProcbased] |= 1ull << (32 + 17);
  cpu2.msrs[msr::kProcbased3] = 1ull << 4;
  Report rep2 = MakeReport(cpu2.Cpuid(), cpu2.Reader());
  EXPECT_EQ(cpu2.reads.count(msr::kProcbased3), 1u);
  EXPECT_NE(rep2.text.find("IPI virtualization"), std::string::npos);
  EXPECT_NE(rep2.text.find("Enable EPT"), std::string::npos);
}

TEST(MakeReport, UnreadableMsrIsReportedNotGuessed) {
  FakeCpu cpu = Skylake();
  cpu.msrs.clear();
  Report rep = MakeReport(cpu.Cpuid(), cpu.Reader());
  EXPECT_EQ(rep.status, Report::Status::kMsrUnreadable);
  EXPECT_NE(rep.text.find("cannot read IA32_VMX_BASIC"), std::string::npos);
}

TEST(MakeReport, AmdSaysVmxAbsentAndPrintsSvmLeaf) {
  FakeCpu cpu;
  cpu.vendor = "AuthenticAMD";
  cpu.vmx = false;
  cpu.svm = true;
  cpu.svm_edx = 1u | (1u << 3);  // NP, NRIPS
  Report rep = MakeReport(cpu.Cpuid(), cpu.Reader());
  EXPECT_EQ(rep.status, Report::Status::kVmxAbsent);
  EXPECT_TRUE(cpu.reads.empty()) << "no MSR may be read without VMX";
  EXPECT_NE(rep.text.find("VMX: absent"), std::string::npos);
  EXPECT_TRUE(std::regex_search(rep.text, std::regex("EDX bit  0  NP \\(nested paging\\) +yes\n")))
      << rep.text;
  EXPECT_TRUE(std::regex_search(rep.text, std::regex("EDX bit  1  LbrVirt +no\n"))) << rep.text;
  EXPECT_TRUE(std::regex_search(rep.text, std::regex("EDX bit  3  NRIPS \\(next RIP save\\) +yes\n")))
      << rep.text;
}

}  // namespace
}  // namespace vmxcap
