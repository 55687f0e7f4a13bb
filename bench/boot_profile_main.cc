// boot_profile: the exit profile of the guest it runs in, as JSON. Built
// static so an L2 init can run it as its very first program, before any
// library or /proc exists, and again after the stress run:
//
//   boot_profile --stage=first_user_instruction --out=/results/boot0.json
//   boot_profile --stage=after_stress --out=/results/boot1.json
//   bench/report.py --labels boot,after boot0.json boot1.json
//
// Exit status: 0 profile written, 3 host has no exit-statistics leaves (the
// JSON says so), 2 usage or I/O error.
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "boot_profile.h"

int main(int argc, char** argv) {
  bench::ProfileContext ctx{"first_user_instruction"};
  std::string out, profile = "sjsu";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--stage=", 0) == 0) {
      ctx.stage = a.substr(8);
    } else if (a.rfind("--out=", 0) == 0) {
      out = a.substr(6);
    } else if (a.rfind("--profile=", 0) == 0) {
      profile = a.substr(10);
    } else {
      std::fprintf(stderr, "usage: %s [--stage=NAME] [--out=FILE] [--profile=sjsu|f22]\n", argv[0]);
      return 2;
    }
  }
  auto p = exitstats::ProfileByName(profile);
  if (!p) {
    std::fprintf(stderr, "boot_profile: unknown profile %s\n", profile.c_str());
    return 2;
  }
  struct sysinfo si {};
  if (sysinfo(&si) == 0) ctx.uptime_s = double(si.uptime);  // no /proc needed
  ctx.online_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  const exitstats::Client client(*p);
  const std::string json = bench::BootProfileJson(client, ctx);
  if (out.empty()) {
    std::fputs(json.c_str(), stdout);
  } else {
    FILE* f = std::fopen(out.c_str(), "w");
    if (!f || std::fputs(json.c_str(), f) < 0 || std::fclose(f) != 0) {
      std::fprintf(stderr, "boot_profile: cannot write %s: %s\n", out.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }
  return json.find("\"patched\": true") != std::string::npos ? 0 : 3;
}
