#pragma once
// Human-friendly durations and byte sizes as written in config.yaml ("250ms", "5s", "1m";
// "16KiB", "10MB"). Pure parsing: a value or the reason it is not one.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachecar {

using Duration = std::chrono::milliseconds;

// Accepts an integer followed by ms, s, m or h ("250ms", "5s", "1m", "2h"). A bare number is
// rejected on purpose: "timeout: 5" would otherwise silently mean 5 ms to one reader and 5 s
// to another. On failure, `reason` says what was wrong.
std::optional<Duration> parse_duration(std::string_view text, std::string& reason);

// Accepts a plain byte count or a number followed by k/KB/KiB, m/MB/MiB or g/GB/GiB, all
// powers of 1024 as nginx's client_max_body_size reads them.
std::optional<uint64_t> parse_size(std::string_view text, std::string& reason);

// Renders a duration with the largest unit that represents it exactly ("60s", "1m" -> "1m").
std::string format_duration(Duration d);

// Renders a size with the largest binary unit that represents it exactly ("16KiB").
std::string format_size(uint64_t bytes);

}  // namespace cachecar
