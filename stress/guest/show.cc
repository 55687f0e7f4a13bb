#include "show.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "options.h"

namespace exitstats::guest {
namespace {

struct ReasonRow {
  uint32_t reason;
  std::string name;
  std::string state;  // "" counted, "undefined", "not handled"
  uint64_t exits = 0, cycles = 0;
};

std::vector<ReasonRow> ReadRows(const Client& client, Vendor vendor) {
  std::vector<ReasonRow> rows;
  for (uint32_t r = 0; r <= kHighestDefinedReason; ++r) {
    ReasonRow row{r, "-", ""};
    auto info = LookupReason(r);
    if (info) row.name = std::string(info->name);
    ReasonAnswer e = client.ReasonExits32(r), c = client.ReasonCycles(r);
    if (e.kind == ReasonAnswer::Kind::kUndefined) {
      row.state = "undefined";
    } else {
      row.exits = e.value;
      row.cycles = c.kind == ReasonAnswer::Kind::kCounted ? c.value : 0;
      if (!info) row.state = "undefined? (counted)";
      else if (!IsHandled(r, vendor)) row.state = "not handled";
    }
    rows.push_back(row);
  }
  return rows;
}

}  // namespace

std::string SampleLine(const Client& client) {
  return Fmt("CPUID(0x%08X), exits=%u, cycles spent in exit=%llu", client.profile().total_exits,
             client.TotalExits32(), (unsigned long long)client.TotalCycles());
}

std::string ReasonTable(const Client& client, Vendor vendor, size_t top) {
  std::vector<ReasonRow> rows = ReadRows(client, vendor);
  std::string out = Fmt("per reason (leaves 0x%08X exits, 0x%08X cycles; %s names):\n",
                        client.profile().reason_exits, client.profile().reason_cycles,
                        vendor == Vendor::kSvm ? "SVM exits under their SDM" : "SDM");
  out += Fmt("%6s  %-28s %12s %16s  %s\n", "reason", "name", "exits", "cycles", "");
  for (const ReasonRow& r : rows)
    out += Fmt("%6u  %-28.28s %12llu %16llu  %s\n", r.reason, r.name.c_str(),
               (unsigned long long)r.exits, (unsigned long long)r.cycles, r.state.c_str());

  std::vector<ReasonRow> counted;
  uint64_t sum = 0;
  for (const ReasonRow& r : rows)
    if (r.exits) {
      counted.push_back(r);
      sum += r.exits;
    }
  std::sort(counted.begin(), counted.end(),
            [](const ReasonRow& a, const ReasonRow& b) { return a.exits > b.exits; });
  if (counted.size() > top) counted.resize(top);
  out += Fmt("\nmost frequent (%llu exits in all; since the counters started):\n",
             (unsigned long long)sum);
  const uint64_t most = counted.empty() ? 1 : counted.front().exits;
  constexpr int kWidth = 40;
  for (const ReasonRow& r : counted) {
    int n = static_cast<int>(std::lround(kWidth * double(r.exits) / double(most)));
    out += Fmt("%6u  %-22.22s %6.1f%% %s\n", r.reason, r.name.c_str(),
               sum ? 100.0 * double(r.exits) / double(sum) : 0.0,
               std::string(std::max(n, 1), '#').c_str());
  }
  return out;
}

std::string Watch(const Client& client, const ShowConfig& cfg,
                  const std::function<void(double)>& sleep,
                  const std::function<void(const std::string&)>& emit) {
  uint32_t prev = client.TotalExits32();
  uint64_t prev_cycles = client.TotalCycles();
  std::vector<double> rates;
  emit(Fmt("watch: every %.1f s, %u samples (leaf 0x%08X)", cfg.watch_seconds, cfg.samples,
           client.profile().total_exits));
  for (uint32_t i = 1; i <= cfg.samples; ++i) {
    sleep(cfg.watch_seconds);
    uint32_t now = client.TotalExits32();
    uint64_t cycles = client.TotalCycles();
    uint32_t d = now - prev;  // wrap-safe: the course count is 32 bits
    double rate = d / cfg.watch_seconds;
    rates.push_back(rate);
    emit(Fmt("t=%7.1f s  exits=%u (+%u, %.0f/s)  cycles=%llu (+%llu)", i * cfg.watch_seconds, now,
             d, rate, (unsigned long long)cycles, (unsigned long long)(cycles - prev_cycles)));
    prev = now;
    prev_cycles = cycles;
  }
  if (rates.empty()) return "";
  double mean = 0;
  for (double r : rates) mean += r;
  mean /= rates.size();
  double var = 0;
  for (double r : rates) var += (r - mean) * (r - mean);
  double cv = mean > 0 ? std::sqrt(var / rates.size()) / mean : 0;
  auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
  return Fmt("rate: mean %.0f exits/s, min %.0f, max %.0f, spread %.0f%% of the mean (%s)", mean,
             *lo, *hi, 100 * cv,
             cv < 0.1 ? "stable" : cv < 0.3 ? "fairly stable" : "not stable");
}

int Show(const Checker& checker, const ShowConfig& cfg, const std::function<void(double)>& sleep,
         const std::function<void(const std::string&)>& emit) {
  const FoundLeaves& found = checker.found();
  emit("exit_stress --show: " + checker.HostWords());
  emit("leaves: " + found.Summary());
  if (!found.any_counter()) {
    emit(checker.absence());
    return kExitNoHost;
  }
  const Client& client = checker.client();
  emit(SampleLine(client));
  if (checker.assignment() >= 3 && found.has(kRoleReasonExits)) {
    std::string table = ReasonTable(client, checker.vendor(), cfg.top);
    size_t start = 0;
    for (size_t nl; (nl = table.find('\n', start)) != std::string::npos; start = nl + 1)
      emit(table.substr(start, nl - start));
  } else {
    emit("per reason: no per-reason leaf counts (assignment 2)");
  }
  if (cfg.watch_seconds > 0) {
    std::string closing = Watch(client, cfg, sleep, emit);
    if (!closing.empty()) emit(closing);
  }
  return kExitPass;
}

}  // namespace exitstats::guest
