#include "config/duration.h"

#include <array>
#include <charconv>
#include <limits>

namespace cachecar {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

// Splits "250ms" into 250 and "ms". Fails on an empty number, a sign or an overflow.
bool split_number(std::string_view text, uint64_t& number, std::string_view& suffix,
                  std::string& reason) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0) {
    reason = "expected a number followed by a unit";
    return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, number);
  if (ec != std::errc() || end != text.data() + digits) {
    reason = "number out of range";
    return false;
  }
  suffix = text.substr(digits);
  return true;
}

bool multiply(uint64_t number, uint64_t factor, uint64_t& out) {
  if (factor != 0 && number > std::numeric_limits<uint64_t>::max() / factor) {
    return false;
  }
  out = number * factor;
  return true;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, std::string& reason) {
  static constexpr std::array<Unit, 4> kUnits{
      {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}}};
  uint64_t number = 0;
  std::string_view suffix;
  if (!split_number(text, number, suffix, reason)) {
    reason += " (e.g. 250ms, 5s, 1m)";
    return std::nullopt;
  }
  if (suffix.empty()) {
    reason = "missing unit: write e.g. 250ms, 5s or 1m";
    return std::nullopt;
  }
  for (const Unit& unit : kUnits) {
    if (suffix == unit.suffix) {
      uint64_t ms = 0;
      if (!multiply(number, unit.factor, ms) ||
          ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        reason = "duration out of range";
        return std::nullopt;
      }
      return Duration(static_cast<int64_t>(ms));
    }
  }
  reason = "unknown unit '" + std::string(suffix) + "' (use ms, s, m or h)";
  return std::nullopt;
}

std::optional<uint64_t> parse_size(std::string_view text, std::string& reason) {
  static constexpr uint64_t kKiB = 1024;
  static constexpr std::array<Unit, 13> kUnits{{{"", 1},
                                                {"k", kKiB},
                                                {"K", kKiB},
                                                {"KB", kKiB},
                                                {"KiB", kKiB},
                                                {"m", kKiB * kKiB},
                                                {"M", kKiB * kKiB},
                                                {"MB", kKiB * kKiB},
                                                {"MiB", kKiB * kKiB},
                                                {"g", kKiB * kKiB * kKiB},
                                                {"G", kKiB * kKiB * kKiB},
                                                {"GB", kKiB * kKiB * kKiB},
                                                {"GiB", kKiB * kKiB * kKiB}}};
  uint64_t number = 0;
  std::string_view suffix;
  if (!split_number(text, number, suffix, reason)) {
    reason = "expected a byte count such as 16384, 16KiB or 10MiB";
    return std::nullopt;
  }
  for (const Unit& unit : kUnits) {
    if (suffix == unit.suffix) {
      uint64_t bytes = 0;
      if (!multiply(number, unit.factor, bytes)) {
        reason = "size out of range";
        return std::nullopt;
      }
      return bytes;
    }
  }
  reason = "unknown unit '" + std::string(suffix) + "' (use KiB, MiB or GiB)";
  return std::nullopt;
}

std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  if (ms != 0 && ms % 3'600'000 == 0) {
    return std::to_string(ms / 3'600'000) + "h";
  }
  if (ms != 0 && ms % 60'000 == 0) {
    return std::to_string(ms / 60'000) + "m";
  }
  if (ms != 0 && ms % 1000 == 0) {
    return std::to_string(ms / 1000) + "s";
  }
  return std::to_string(ms) + "ms";
}

std::string format_size(uint64_t bytes) {
  static constexpr std::array<std::string_view, 3> kNames{"GiB", "MiB", "KiB"};
  static constexpr std::array<uint64_t, 3> kFactors{1ULL << 30, 1ULL << 20, 1ULL << 10};
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (bytes != 0 && bytes % kFactors[i] == 0) {
      return std::to_string(bytes / kFactors[i]) + std::string(kNames[i]);
    }
  }
  return std::to_string(bytes);
}

}  // namespace cachecar
