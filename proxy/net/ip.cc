#include "net/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "http/chars.h"
#include "http/wire_text.h"

namespace cachecar {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::string IpAddress::to_string() const {
  if (!v6) {
    // On every limited request (the counter's key): digits by hand, not inet_ntop's sprintf.
    char text[15];
    WireText out(text);
    for (size_t i = 0; i < 4; ++i) {
      if (i > 0) {
        out.put('.');
      }
      out.put_decimal(bytes[i]);
    }
    return std::string(text, out.end());
  }
  char text[INET6_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET6, bytes.data(), text, sizeof(text));
  return text;
}

std::optional<IpAddress> parse_ip(std::string_view text) {
  text = trim_ows(text);
  // inet_pton reads a C string: a NUL inside would hide whatever follows it.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
      text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string literal(text);
  IpAddress out;
  if (inet_pton(AF_INET, literal.c_str(), out.bytes.data()) == 1) {
    return out;
  }
  if (inet_pton(AF_INET6, literal.c_str(), out.bytes.data()) == 1) {
    out.v6 = true;
    if (std::memcmp(out.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0) {
      IpAddress v4;
      std::memcpy(v4.bytes.data(), out.bytes.data() + 12, 4);
      return v4;
    }
    return out;
  }
  return std::nullopt;
}

IpAddress mask(const IpAddress& address, int prefix) {
  IpAddress out = address;
  const int bits = static_cast<int>(address.size()) * 8;
  for (int bit = prefix < 0 ? 0 : prefix; bit < bits; ++bit) {
    out.bytes[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return out;
}

bool Cidr::contains(const IpAddress& address) const {
  return address.v6 == network.v6 && mask(address, prefix) == network;
}

std::string Cidr::to_string() const { return network.to_string() + "/" + std::to_string(prefix); }

std::optional<Cidr> parse_cidr(std::string_view text, std::string& reason) {
  text = trim_ows(text);
  const size_t slash = text.find('/');
  auto address = parse_ip(text.substr(0, slash));
  if (!address) {
    reason = "'" + std::string(text) + "' is not an IP address or CIDR range";
    return std::nullopt;
  }
  const int max_prefix = static_cast<int>(address->size()) * 8;
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 ||
        prefix > max_prefix) {
      reason = "prefix length must be 0 to " + std::to_string(max_prefix);
      return std::nullopt;
    }
  }
  return Cidr{mask(*address, prefix), prefix};
}

}  // namespace cachecar
