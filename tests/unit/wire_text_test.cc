// http/wire_text.h: pieces and numbers written into memory sized beforehand.

#include "http/wire_text.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace cachecar {
namespace {

std::string decimal(uint64_t value) {
  std::string out;
  append_wire_text(out, WireText::kMaxDecimal, [&](WireText& text) { text.put_decimal(value); });
  return out;
}

TEST_CASE("put_decimal writes every magnitude, up to the largest uint64_t") {
  CHECK(decimal(0) == "0");
  CHECK(decimal(7) == "7");
  CHECK(decimal(10) == "10");
  CHECK(decimal(129) == "129");
  CHECK(decimal(1'000'000'000) == "1000000000");
  CHECK(decimal(std::numeric_limits<uint64_t>::max()) == "18446744073709551615");
  CHECK(decimal(std::numeric_limits<uint64_t>::max()).size() == WireText::kMaxDecimal);
  for (uint64_t value = 1; value < 10'000'000'000'000'000'000ULL / 10; value *= 10) {
    CAPTURE(value);
    CHECK(decimal(value - 1) == std::to_string(value - 1));
    CHECK(decimal(value) == std::to_string(value));
  }
}

TEST_CASE("put_count writes a negative count as 0") {
  std::string out;
  append_wire_text(out, 64, [](WireText& text) {
    text.put_count(-5);
    text.put(' ');
    text.put_count(42);
    text.put(' ');
    text.put_count(std::numeric_limits<int64_t>::min());
  });
  CHECK(out == "0 42 0");
}

TEST_CASE("append_wire_text appends to what is there and keeps only what was written") {
  std::string out = "HTTP/1.1 ";
  append_wire_text(out, 200, [](WireText& text) {
    text.put_decimal(200);
    text.put(" OK\r\n");
    text.put("");
    text.put(std::string_view());
  });
  CHECK(out == "HTTP/1.1 200 OK\r\n");
  append_wire_text(out, 0, [](WireText&) {});
  CHECK(out == "HTTP/1.1 200 OK\r\n");
}

}  // namespace
}  // namespace cachecar
