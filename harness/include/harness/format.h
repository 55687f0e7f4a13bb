// printf into a std::string, for the messages of the VMM's errors.
#pragma once

#include <string>

namespace harness {

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace harness
