#include "host_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>

namespace hostile {

uint64_t Knob(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  char* end = nullptr;
  uint64_t x = std::strtoull(v, &end, 0);
  if (end && *end) {
    std::fprintf(stderr, "hostile_test: ignoring %s=%s (not a number)\n", name, v);
    return dflt;
  }
  return x;
}

namespace {
std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

ModuleParam::ModuleParam(std::string path) : path_(std::move(path)), original_(ReadFile(path_)) {}

ModuleParam::~ModuleParam() {
  if (original_ && Read() != original_) Write(*original_);
}

std::optional<std::string> ModuleParam::Read() const { return ReadFile(path_); }

bool ModuleParam::Write(const std::string& value, std::string* why) {
  int fd = open(path_.c_str(), O_WRONLY);
  if (fd < 0 || write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    if (why) *why = path_ + ": " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return false;
  }
  close(fd);
  return true;
}

// ---- kernel log ------------------------------------------------------------

std::optional<std::string> ReportClass(const std::string& line) {
  // Same rules and order as ci/sanitizers/scan-klog (lockdep before WARN).
  static const std::vector<std::pair<std::string, std::regex>> rules = {
      {"KASAN", std::regex("^BUG: KASAN: ")},
      {"KCSAN", std::regex("^BUG: KCSAN: ")},
      {"UBSAN", std::regex("^UBSAN: ")},
      {"LOCKDEP",
       std::regex("^WARNING: (possible circular locking|possible recursive locking|"
                  "inconsistent lock state|possible irq lock inversion|\\S+-safe -> "
                  "\\S+-unsafe lock order|bad unlock balance|held lock freed|lock held when "
                  "returning to user space|suspicious RCU usage)")},
      {"WARN", std::regex("^WARNING: CPU: \\d+ PID: \\d+ at ")},
      {"BUG", std::regex("^(BUG: |kernel BUG at |Oops: |general protection fault|Kernel panic - "
                         "not syncing|INFO: task \\S+ blocked for more than|watchdog: BUG: soft "
                         "lockup|rcu: INFO: \\S+ (self-)?detected stall)")},
      {"LEAK", std::regex("^kmemleak: \\d+ new suspected memory leaks")},
  };
  for (const auto& [cls, rx] : rules)
    if (std::regex_search(line, rx)) return cls;
  return std::nullopt;
}

KmsgWatch::KmsgWatch() {
  fd_ = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ >= 0) lseek(fd_, 0, SEEK_END);
}

KmsgWatch::~KmsgWatch() {
  if (fd_ >= 0) close(fd_);
}

std::vector<KlogReport> KmsgWatch::Collect() {
  std::vector<KlogReport> out;
  if (fd_ < 0) return out;
  const char* sym = std::getenv("HOSTILE_PATCH_SYMBOL");
  const std::string patch_sym = sym && *sym ? sym : "exit_stats";
  char buf[8192];
  KlogReport* cur = nullptr;
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof buf - 1);
    if (n < 0 && errno == EPIPE) continue;  // overwritten records: keep reading
    if (n <= 0) break;
    buf[n] = 0;
    // "prio,seq,usec,flags;message\n continuation lines"
    const char* semi = std::strchr(buf, ';');
    std::string msg = semi ? semi + 1 : buf;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    text_ += msg + "\n";
    if (auto cls = ReportClass(msg)) {
      out.push_back({*cls, msg, {msg}, msg.find(patch_sym) != std::string::npos});
      cur = &out.back();
    } else if (cur && cur->lines.size() < 60) {
      cur->lines.push_back(msg);
      if (msg.find(patch_sym) != std::string::npos) cur->mentions_patch = true;
    }
  }
  return out;
}

void MarkStage(const std::string& stage, bool begin) {
  int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::string m = "kvm-exit-stats: stage " + stage + (begin ? " begin\n" : " end\n");
  (void)!write(fd, m.data(), m.size());
  close(fd);
}

// ---- leak counters ----------------------------------------------------------

std::optional<std::map<std::string, uint64_t>> KvmSlabObjects() {
  // Shrink the kvm caches first: kmem_cache_shrink() also drains KASAN's
  // quarantine of that cache, whose freed objects otherwise still count as
  // active (measured: kvm_vcpu 12->160 after 200 VMs on the KASAN kernel,
  // with kmemleak finding nothing).
  if (DIR* d = opendir("/sys/kernel/slab")) {
    while (dirent* e = readdir(d))
      if (std::strstr(e->d_name, "kvm")) {
        int fd = open(("/sys/kernel/slab/" + std::string(e->d_name) + "/shrink").c_str(), O_WRONLY);
        if (fd >= 0) {
          (void)!write(fd, "1", 1);
          close(fd);
        }
      }
    closedir(d);
  }
  std::ifstream f("/proc/slabinfo");
  if (!f) return std::nullopt;
  std::map<std::string, uint64_t> m;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::string name;
    uint64_t active = 0;
    if (!(is >> name >> active)) continue;
    if (name.find("kvm") != std::string::npos) m[name] = active;
  }
  return m;
}

std::optional<uint64_t> KvmDebugfsVms() {
  DIR* d = opendir("/sys/kernel/debug/kvm");
  if (!d) return std::nullopt;
  uint64_t n = 0;
  while (dirent* e = readdir(d))
    if (e->d_type == DT_DIR && e->d_name[0] != '.' && std::strchr(e->d_name, '-')) ++n;
  closedir(d);
  return n;
}

bool KmemleakClear() {
  int fd = open("/sys/kernel/debug/kmemleak", O_WRONLY);
  if (fd < 0) return false;
  bool ok = write(fd, "clear", 5) == 5;
  close(fd);
  return ok;
}

std::optional<uint64_t> KmemleakScan(std::string* report) {
  int fd = open("/sys/kernel/debug/kmemleak", O_WRONLY);
  if (fd < 0) return std::nullopt;
  bool ok = write(fd, "scan", 4) == 4;
  close(fd);
  if (!ok) return std::nullopt;
  auto text = ReadFile("/sys/kernel/debug/kmemleak");
  if (!text) return std::nullopt;
  uint64_t n = 0;
  for (size_t p = 0; (p = text->find("unreferenced object", p)) != std::string::npos; ++p) ++n;
  if (report) *report = *text;
  return n;
}

// ---- figures ------------------------------------------------------------------

Figures& Figures::Get() {
  static Figures f;
  return f;
}

void Figures::SetDir(const std::string& dir) { dir_ = dir; }

std::string Figures::path() const { return dir_ + "/hostile.md"; }

void Figures::Add(const std::string& section, const std::string& key, const std::string& raw) {
  // One table cell: no line breaks, no column separators.
  std::string value;
  for (char c : raw) value += c == '\n' ? std::string(" / ") : c == '|' ? std::string("/") : std::string(1, c);
  static std::mutex mu;
  std::lock_guard l(mu);
  auto it = std::find_if(sections_.begin(), sections_.end(),
                         [&](const auto& s) { return s.first == section; });
  if (it == sections_.end()) {
    sections_.push_back({section, {}});
    it = sections_.end() - 1;
  }
  auto row = std::find_if(it->second.begin(), it->second.end(),
                          [&](const auto& r) { return r.first == key; });
  if (row == it->second.end())
    it->second.push_back({key, value});
  else
    row->second = value;
  Flush();
}

void Figures::Flush() const {
  mkdir(dir_.c_str(), 0755);
  std::string tmp = path() + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return;
  std::fprintf(f, "# Hostile input, sanitizers and isolation: figures\n\n"
                  "Written by hostile_test (stress/hostile); every number below was measured "
                  "by the run that wrote this file.\n");
  for (const auto& [section, rows] : sections_) {
    std::fprintf(f, "\n## %s\n\n| figure | value |\n|---|---|\n", section.c_str());
    for (const auto& [k, v] : rows) std::fprintf(f, "| %s | %s |\n", k.c_str(), v.c_str());
  }
  std::fclose(f);
  std::rename(tmp.c_str(), path().c_str());
}

}  // namespace hostile
