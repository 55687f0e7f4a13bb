// The binary stats format (Documentation/virt/kvm/api.rst, KVM_GET_STATS_FD):
// a header, an id string, descriptors of (struct + name_size bytes) each, and
// a data block of u64 values at data_offset + desc.offset.
#include <linux/kvm.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "harness/kvm.h"
#include "uapi.h"

namespace harness {

namespace {
void PreadAll(int fd, void* buf, size_t len, off_t off, const char* what) {
  ssize_t r = ::pread(fd, buf, len, off);
  if (r != static_cast<ssize_t>(len))
    throw KvmError(std::string("pread stats fd ") + what, r < 0 ? errno : EIO);
}
}  // namespace

StatsReader::StatsReader(int stats_fd) : fd_(stats_fd) {
  kvm_stats_header h;
  PreadAll(fd_, &h, sizeof h, 0, "header");
  std::vector<char> id(h.name_size + 1, 0);
  PreadAll(fd_, id.data(), h.name_size, h.id_offset, "id");
  id_ = id.data();
  size_t stride = sizeof(uapi::StatsDescHeader) + h.name_size;
  std::vector<uint8_t> descs(stride * h.num_desc);
  PreadAll(fd_, descs.data(), descs.size(), h.desc_offset, "descriptors");
  data_offset_ = h.data_offset;
  for (uint32_t i = 0; i < h.num_desc; i++) {
    auto* d = reinterpret_cast<const uapi::StatsDescHeader*>(descs.data() + i * stride);
    auto* n = reinterpret_cast<const char*>(d + 1);
    std::string name(n, strnlen(n, h.name_size));
    descs_.push_back({name, d->flags, d->size, d->offset});
    data_size_ = std::max<uint32_t>(data_size_, d->offset + d->size * 8);
  }
}

StatsReader::StatsReader(StatsReader&& o) noexcept
    : fd_(o.fd_), id_(std::move(o.id_)), data_offset_(o.data_offset_),
      data_size_(o.data_size_), descs_(std::move(o.descs_)) {
  o.fd_ = -1;
}
StatsReader& StatsReader::operator=(StatsReader&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
    id_ = std::move(o.id_);
    data_offset_ = o.data_offset_;
    data_size_ = o.data_size_;
    descs_ = std::move(o.descs_);
  }
  return *this;
}
StatsReader::~StatsReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> StatsReader::Names() const {
  std::vector<std::string> n;
  for (const Desc& d : descs_) n.push_back(d.name);
  return n;
}

std::optional<uint64_t> StatsReader::TryGet(std::string_view name) const {
  for (const Desc& d : descs_) {
    if (d.name != name) continue;
    uint64_t v;
    PreadAll(fd_, &v, sizeof v, data_offset_ + d.offset, d.name.c_str());
    return v;
  }
  return std::nullopt;
}

uint64_t StatsReader::Get(std::string_view name) const {
  if (auto v = TryGet(name)) return *v;
  throw std::out_of_range("KVM stat '" + std::string(name) + "' not found in " + id_);
}

std::map<std::string, uint64_t> StatsReader::ReadAll() const {
  std::vector<uint64_t> data(data_size_ / 8 + 1);
  PreadAll(fd_, data.data(), data_size_, data_offset_, "data");
  std::map<std::string, uint64_t> all;
  for (const Desc& d : descs_) all[d.name] = data[d.offset / 8];
  return all;
}

}  // namespace harness
