// KVM binary statistics (KVM_GET_STATS_FD) read by name, for a VM or a vCPU.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace harness {

class StatsReader {
 public:
  // Takes ownership of a stats fd and parses its header and descriptors once.
  explicit StatsReader(int stats_fd);
  StatsReader(StatsReader&&) noexcept;
  StatsReader& operator=(StatsReader&&) noexcept;
  StatsReader(const StatsReader&) = delete;
  StatsReader& operator=(const StatsReader&) = delete;
  ~StatsReader();

  const std::string& id() const { return id_; }  // e.g. "kvm-1234/vcpu-0"
  std::vector<std::string> Names() const;
  // First element of the named stat; nullopt if this KVM has no such stat.
  std::optional<uint64_t> TryGet(std::string_view name) const;
  // Throws std::out_of_range naming the stat and the fd's id.
  uint64_t Get(std::string_view name) const;
  // Every stat's first element, one pread of the data block.
  std::map<std::string, uint64_t> ReadAll() const;

 private:
  struct Desc {
    std::string name;
    uint32_t flags;
    uint32_t size;
    uint32_t offset;  // within the data block
  };
  int fd_ = -1;
  std::string id_;
  uint32_t data_offset_ = 0;
  uint32_t data_size_ = 0;
  std::vector<Desc> descs_;
};

}  // namespace harness
