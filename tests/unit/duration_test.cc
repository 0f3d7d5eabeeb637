// config/duration.h: durations ("250ms") and sizes ("16KiB") as config.yaml spells them.

#include "config/duration.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace cachecar {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr uint64_t kUint64Max = std::numeric_limits<uint64_t>::max();

TEST_CASE("parse_duration accepts a whole number followed by ms, s, m or h") {
  struct Case {
    std::string_view text;
    int64_t ms;
  };
  const Case cases[] = {
      {"0ms", 0},
      {"1ms", 1},
      {"250ms", 250},
      {"0s", 0},
      {"5s", 5'000},
      {"1m", 60'000},
      {"90m", 5'400'000},
      {"2h", 7'200'000},
      {"007s", 7'000},
      // The largest values each unit can express in int64 milliseconds.
      {"9223372036854775807ms", kInt64Max},
      {"9223372036854775s", 9'223'372'036'854'775'000},
      {"153722867280912m", 9'223'372'036'854'720'000},
      {"2562047788015h", 9'223'372'036'854'000'000},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto parsed = parse_duration(c.text, reason);
    REQUIRE(parsed.has_value());
    CHECK(parsed->count() == c.ms);
  }
}

TEST_CASE("parse_duration rejects a missing or unknown unit, signs and overflow") {
  struct Case {
    std::string_view text;
    std::string_view reason;  // a substring of the expected reason
  };
  const Case cases[] = {
      {"", "expected a number followed by a unit"},
      {"5", "missing unit"},
      {"30000", "missing unit"},
      {"s", "expected a number followed by a unit"},
      {"ms", "expected a number followed by a unit"},
      {"-5s", "expected a number followed by a unit"},
      {"-0ms", "expected a number followed by a unit"},
      {"+5s", "expected a number followed by a unit"},
      {" 5s", "expected a number followed by a unit"},
      {"5sec", "unknown unit 'sec'"},
      {"5S", "unknown unit 'S'"},
      {"5MS", "unknown unit 'MS'"},
      {"5 s", "unknown unit ' s'"},
      {"5s ", "unknown unit 's '"},
      {"1.5s", "unknown unit '.5s'"},
      {"1d", "unknown unit 'd'"},
      {"5s5", "unknown unit 's5'"},
      // Overflow: of the number itself, of the multiplication, of int64 milliseconds.
      {"18446744073709551616ms", "number out of range"},
      {"99999999999999999999999h", "number out of range"},
      {"9223372036854775808ms", "duration out of range"},
      {"18446744073709551615ms", "duration out of range"},
      {"9223372036854776s", "duration out of range"},
      {"153722867280913m", "duration out of range"},
      {"2562047788016h", "duration out of range"},
      {"18446744073709551615h", "duration out of range"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    CHECK_FALSE(parse_duration(c.text, reason).has_value());
    CAPTURE(reason);
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("parse_duration error messages show an example") {
  std::string reason;
  REQUIRE_FALSE(parse_duration("5", reason).has_value());
  CHECK(reason == "missing unit: write e.g. 250ms, 5s or 1m");
  REQUIRE_FALSE(parse_duration("abc", reason).has_value());
  CHECK(reason == "expected a number followed by a unit (e.g. 250ms, 5s, 1m)");
  REQUIRE_FALSE(parse_duration("5x", reason).has_value());
  CHECK(reason == "unknown unit 'x' (use ms, s, m or h)");
}

TEST_CASE("format_duration uses the largest exact unit and parses back") {
  struct Case {
    int64_t ms;
    std::string_view text;
  };
  const Case cases[] = {
      {0, "0ms"},
      {1, "1ms"},
      {999, "999ms"},
      {1'000, "1s"},
      {1'500, "1500ms"},
      {59'000, "59s"},
      {60'000, "1m"},
      {90'000, "90s"},
      {3'600'000, "1h"},
      {5'400'000, "90m"},
      {86'400'000, "24h"},
      {3'600'001, "3600001ms"},
      {kInt64Max, "9223372036854775807ms"},
      {9'223'372'036'854'000'000, "2562047788015h"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.ms);
    CHECK(format_duration(Duration(c.ms)) == c.text);
    std::string reason;
    const auto back = parse_duration(format_duration(Duration(c.ms)), reason);
    REQUIRE(back.has_value());
    CHECK(back->count() == c.ms);
  }
}

TEST_CASE("parse_size accepts a byte count or a binary unit") {
  struct Case {
    std::string_view text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"0", 0},
      {"1", 1},
      {"16384", 16'384},
      {"1k", 1'024},
      {"1K", 1'024},
      {"1KB", 1'024},
      {"1KiB", 1'024},
      {"16KiB", 16'384},
      {"0KiB", 0},
      {"1m", 1'048'576},
      {"1M", 1'048'576},
      {"1MB", 1'048'576},
      {"10MiB", 10'485'760},
      {"1g", 1'073'741'824},
      {"1G", 1'073'741'824},
      {"1GB", 1'073'741'824},
      {"2GiB", 2'147'483'648},
      {"18446744073709551615", kUint64Max},
      {"17179869183GiB", 17'179'869'183ULL << 30},
      {"18014398509481983KiB", 18'014'398'509'481'983ULL << 10},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    const auto parsed = parse_size(c.text, reason);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == c.bytes);
  }
}

TEST_CASE("parse_size rejects signs, fractions, unknown units and overflow") {
  struct Case {
    std::string_view text;
    std::string_view reason;
  };
  const Case cases[] = {
      {"", "expected a byte count"},
      {"KiB", "expected a byte count"},
      {"-1", "expected a byte count"},
      {"+1", "expected a byte count"},
      {" 1", "expected a byte count"},
      {"1.5KiB", "unknown unit '.5KiB'"},
      {"16kib", "unknown unit 'kib'"},
      {"16 KiB", "unknown unit ' KiB'"},
      {"1TiB", "unknown unit 'TiB'"},
      {"1B", "unknown unit 'B'"},
      {"10mb", "unknown unit 'mb'"},
      {"18446744073709551616", ""},  // the number itself overflows: rejected, any reason
      {"17179869184GiB", "size out of range"},
      {"17592186044416MiB", "size out of range"},
      {"18014398509481984KiB", "size out of range"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    std::string reason;
    CHECK_FALSE(parse_size(c.text, reason).has_value());
    CAPTURE(reason);
    CHECK(!reason.empty());
    CHECK(reason.find(c.reason) != std::string::npos);
  }
}

TEST_CASE("format_size uses the largest exact binary unit and parses back") {
  struct Case {
    uint64_t bytes;
    std::string_view text;
  };
  const Case cases[] = {
      {0, "0"},
      {1, "1"},
      {1'023, "1023"},
      {1'024, "1KiB"},
      {1'536, "1536"},
      {16'384, "16KiB"},
      {1'048'576, "1MiB"},
      {1'049'600, "1025KiB"},
      {10'485'760, "10MiB"},
      {1ULL << 30, "1GiB"},
      {3ULL << 30, "3GiB"},
      {1ULL << 63, "8589934592GiB"},
      {kUint64Max, "18446744073709551615"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.bytes);
    CHECK(format_size(c.bytes) == c.text);
    std::string reason;
    const auto back = parse_size(format_size(c.bytes), reason);
    REQUIRE(back.has_value());
    CHECK(*back == c.bytes);
  }
}

}  // namespace
}  // namespace cachecar
