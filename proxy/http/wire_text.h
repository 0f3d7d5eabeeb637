#pragma once
// Text for the wire, written into memory sized beforehand. A hit's head is a dozen pieces;
// appended one by one to a std::string, each piece paid a capacity check and a call, and
// every number a trip through std::to_chars and a temporary (issue 14 measured the hit path's
// head writing at a tenth of cachecar's instructions per request). The caller reserves the
// bytes once: the sum of the pieces' sizes, with kMaxDecimal for each number.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace cachecar {

class WireText {
 public:
  // The most characters put_decimal writes: 2^64 - 1 has 20 digits.
  static constexpr size_t kMaxDecimal = 20;

  // Requires: `at` has room for everything put into it.
  explicit WireText(char* at) : at_(at) {}

  void put(std::string_view text) {
    if (!text.empty()) {
      std::memcpy(at_, text.data(), text.size());
      at_ += text.size();
    }
  }
  void put(char c) { *at_++ = c; }
  // Two digits a step, from a table: the hit path writes six numbers, most of ten digits.
  void put_decimal(uint64_t value) {
    at_ += decimal_digits(value);
    char* digit = at_;
    while (value >= 100) {
      digit -= 2;
      std::memcpy(digit, &kDigitPairs[(value % 100) * 2], 2);
      value /= 100;
    }
    if (value >= 10) {
      std::memcpy(digit - 2, &kDigitPairs[value * 2], 2);
    } else {
      *--digit = static_cast<char>('0' + value);
    }
  }
  // A negative value is written as 0: every number on the wire here is a count or a size.
  void put_count(int64_t value) { put_decimal(value < 0 ? 0 : static_cast<uint64_t>(value)); }

  char* end() const { return at_; }

 private:
  static constexpr char kDigitPairs[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";

  static size_t decimal_digits(uint64_t value) {
    size_t digits = 1;
    while (true) {
      if (value < 10) {
        return digits;
      }
      if (value < 100) {
        return digits + 1;
      }
      if (value < 1000) {
        return digits + 2;
      }
      if (value < 10000) {
        return digits + 3;
      }
      value /= 10000;
      digits += 4;
    }
  }

  char* at_;
};

// Appends up to `most` bytes to `out` through a WireText, then trims `out` to what `write`
// put. `write` is called as write(WireText&).
template <typename Write>
void append_wire_text(std::string& out, size_t most, Write&& write) {
  const size_t start = out.size();
  out.resize(start + most);
  WireText text(out.data() + start);
  write(text);
  out.resize(static_cast<size_t>(text.end() - out.data()));
}

}  // namespace cachecar
