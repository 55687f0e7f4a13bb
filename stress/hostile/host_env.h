// The L1 host around the hostile stages: knobs, module parameters, kernel-log
// watching, leak counters, and the figures written to the results folder.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "harness/format.h"

namespace hostile {

// An integer knob from the environment (the runner sets these), or `dflt`.
uint64_t Knob(const char* name, uint64_t dflt);

// A kvm module parameter (/sys/module/kvm/parameters/NAME): read, write, and
// restore on destruction, so a failing test leaves the host as it found it.
class ModuleParam {
 public:
  explicit ModuleParam(std::string path);
  ~ModuleParam();
  ModuleParam(const ModuleParam&) = delete;
  ModuleParam& operator=(const ModuleParam&) = delete;
  bool exists() const { return original_.has_value(); }
  const std::string& path() const { return path_; }
  std::optional<std::string> Read() const;
  // false with errno-style text in *why if the write failed.
  bool Write(const std::string& value, std::string* why = nullptr);

 private:
  std::string path_;
  std::optional<std::string> original_;
};
inline constexpr const char* kHostWideParam = "/sys/module/kvm/parameters/exit_stats_host_wide";
inline constexpr const char* kKcsanSkipWatch = "/sys/module/kcsan/parameters/skip_watch";

// Kernel-log reports that appeared while a stage ran (/dev/kmsg from the
// moment of construction). The authoritative scan is ci/sanitizers/scan-klog
// on the whole console log; this one lets hostile_test fail on its own in L1.
struct KlogReport {
  std::string cls;    // KASAN, UBSAN, KCSAN, LOCKDEP, WARN, BUG, LEAK
  std::string title;  // the report's first line
  std::vector<std::string> lines;
  bool mentions_patch = false;  // a line names exit_stats (or HOSTILE_PATCH_SYMBOL)
};
class KmsgWatch {
 public:
  KmsgWatch();
  ~KmsgWatch();
  bool available() const { return fd_ >= 0; }
  std::vector<KlogReport> Collect();  // reports since construction / last call
  const std::string& text() const { return text_; }  // every record read

 private:
  int fd_ = -1;
  std::string text_;
};
// Classifies one kernel-log line as a report header (scan-klog's rules).
std::optional<std::string> ReportClass(const std::string& line);
// "kvm-exit-stats: stage NAME begin|end" into the kernel log (scan-klog's marks).
void MarkStage(const std::string& stage, bool begin);

// Leak counters: active objects of slab caches whose name contains `kvm`
// (from /proc/slabinfo, after shrinking them, which drains KASAN's
// quarantine), and VM directories under /sys/kernel/debug/kvm.
std::optional<std::map<std::string, uint64_t>> KvmSlabObjects();
std::optional<uint64_t> KvmDebugfsVms();
// kmemleak: "clear" now; Scan() later returns the number of new suspects.
bool KmemleakClear();
std::optional<uint64_t> KmemleakScan(std::string* report);

// Figures for the results folder: one Markdown table per section, rewritten
// after every change so that a run killed half-way keeps what it measured.
class Figures {
 public:
  static Figures& Get();
  void SetDir(const std::string& dir);
  const std::string& dir() const { return dir_; }
  void Add(const std::string& section, const std::string& key, const std::string& value);
  std::string path() const;
  void Flush() const;

 private:
  std::string dir_ = "hostile-results";
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> sections_;
};

using harness::Format;

}  // namespace hostile
