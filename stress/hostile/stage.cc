#include "stage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>

namespace hostile {

namespace {
// The whole kernel log as far as the ring buffer still holds it.
const std::string& BootLog() {
  static const std::string log = [] {
    std::string s;
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return s;
    char buf[8192];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EPIPE) continue;
      if (n <= 0) break;
      s.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return s;
  }();
  return log;
}
}  // namespace

bool KernelHas(const char* what) {
  struct stat st;
  const std::string w = what;
  if (w == "KCSAN")
    return stat("/sys/kernel/debug/kcsan", &st) == 0 || BootLog().find("kcsan: ") != std::string::npos;
  if (w == "KASAN") return BootLog().find("KernelAddressSanitizer initialized") != std::string::npos;
  if (w == "kmemleak") return stat("/sys/kernel/debug/kmemleak", &st) == 0;
  return false;
}

void ExpectNoKernelReports(KmsgWatch& watch, const std::string& section) {
  Figures& fig = Figures::Get();
  if (!watch.available()) {
    fig.Add(section, "kernel reports during the stage",
            "not checked here (/dev/kmsg unreadable); ci/sanitizers/scan-klog checks the console log");
    return;
  }
  std::map<std::string, int> failing, listed;
  for (const KlogReport& r : watch.Collect()) {
    const bool fails = r.cls != "KCSAN" || r.mentions_patch;
    (fails ? failing : listed)[r.cls]++;
    std::string excerpt;
    for (size_t i = 0; i < r.lines.size() && i < 12; i++) excerpt += "    " + r.lines[i] + "\n";
    if (fails)
      ADD_FAILURE() << r.cls << " report during " << section << ":\n" << excerpt;
    else
      std::printf("[ listed ] %s report elsewhere in the kernel (not the patch's code):\n%s",
                  r.cls.c_str(), excerpt.c_str());
  }
  auto join = [](const std::map<std::string, int>& m) {
    std::string s;
    for (auto& [k, v] : m) s += (s.empty() ? "" : ", ") + k + " " + std::to_string(v);
    return s.empty() ? std::string("0") : s;
  };
  fig.Add(section, "kernel reports in the patch's code or failing (KASAN/UBSAN/WARN/BUG/lockdep)",
          join(failing));
  fig.Add(section, "KCSAN reports elsewhere in the kernel (listed, not failing)", join(listed));
}

}  // namespace hostile
