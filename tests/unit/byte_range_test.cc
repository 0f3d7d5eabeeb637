// http/byte_range.h: one byte range served from a stored complete response.

#include "http/byte_range.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace cachecar {
namespace {

RequestHead get_with(std::vector<std::pair<std::string, std::string>> fields,
                     std::string method = "GET") {
  RequestHead head;
  head.method = std::move(method);
  head.target = "/r";
  for (auto& [name, value] : fields) {
    head.headers.add(std::move(name), std::move(value));
  }
  return head;
}

TEST_CASE("parse_single_byte_range: one range of bytes, nothing else") {
  struct Case {
    std::string_view value;
    bool valid;
    std::optional<uint64_t> first;
    std::optional<uint64_t> last;
    uint64_t suffix;
  };
  const Case cases[] = {
      {"bytes=0-99", true, 0, 99, 0},
      {"bytes=10-", true, 10, std::nullopt, 0},
      {"bytes=-5", true, std::nullopt, std::nullopt, 5},
      {"Bytes= 3-3 ", true, 3, 3, 0},
      {"bytes=5-4", false, {}, {}, 0},
      {"bytes=0-1,5-6", false, {}, {}, 0},
      {"bytes=-0", false, {}, {}, 0},
      {"bytes=-", false, {}, {}, 0},
      {"bytes=a-b", false, {}, {}, 0},
      {"bytes=1-2x", false, {}, {}, 0},
      {"items=0-1", false, {}, {}, 0},
      {"bytes=", false, {}, {}, 0},
      {"bytes=99999999999999999999999-", false, {}, {}, 0},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const auto range = parse_single_byte_range(c.value);
    REQUIRE(range.has_value() == c.valid);
    if (range) {
      CHECK(range->first == c.first);
      CHECK(range->last == c.last);
      CHECK(range->suffix_length == c.suffix);
    }
  }
  CHECK_FALSE(servable_range(get_with({{"Range", "bytes=0-1"}}, "HEAD")));
  CHECK_FALSE(servable_range(get_with({{"Range", "bytes=0-1"}, {"Range", "bytes=2-3"}})));
  CHECK(servable_range(get_with({{"Range", "bytes=0-1"}})));
}

TEST_CASE("cut_to_range: 206 with Content-Range, 416 beyond the body, whole otherwise") {
  const std::string lines = "Content-Type: text/plain\r\nETag: \"s1\"\r\n";
  const std::string body = "0123456789";
  struct Case {
    std::string name;
    RequestHead request;
    int status;
    std::string body;
    std::string content_range;  // "" when none is added
  };
  const std::vector<Case> cases = {
      {"first bytes", get_with({{"Range", "bytes=0-3"}}), 206, "0123", "bytes 0-3/10"},
      {"open end", get_with({{"Range", "bytes=7-"}}), 206, "789", "bytes 7-9/10"},
      {"last past the end", get_with({{"Range", "bytes=8-100"}}), 206, "89", "bytes 8-9/10"},
      {"suffix", get_with({{"Range", "bytes=-4"}}), 206, "6789", "bytes 6-9/10"},
      {"suffix longer than the body", get_with({{"Range", "bytes=-40"}}), 206, body,
       "bytes 0-9/10"},
      {"beyond the body", get_with({{"Range", "bytes=10-"}}), 416, "", "bytes */10"},
      {"If-Range with the stored tag", get_with({{"Range", "bytes=0-0"}, {"If-Range", "\"s1\""}}),
       206, "0", "bytes 0-0/10"},
      {"If-Range with another tag", get_with({{"Range", "bytes=0-0"}, {"If-Range", "\"s2\""}}),
       200, body, ""},
      {"If-Range weak", get_with({{"Range", "bytes=0-0"}, {"If-Range", "W/\"s1\""}}), 200, body,
       ""},
      {"If-Range with a date",
       get_with({{"Range", "bytes=0-0"}, {"If-Range", "Sun, 06 Nov 1994 08:49:37 GMT"}}), 200,
       body, ""},
      {"several ranges", get_with({{"Range", "bytes=0-1,3-4"}}), 200, body, ""},
      {"no Range", get_with({}), 200, body, ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::string out;
    const RangedView view = cut_to_range(200, lines, body, c.request, out);
    CHECK(view.status == c.status);
    CHECK(view.body == c.body);
    if (c.content_range.empty()) {
      CHECK(view.head_lines == lines);
    } else if (c.status == 416) {
      CHECK(view.head_lines == "Content-Range: " + c.content_range + "\r\n");
    } else {
      CHECK(view.head_lines == lines + "Content-Range: " + c.content_range + "\r\n");
    }
  }
  std::string out;
  CHECK(cut_to_range(404, lines, body, get_with({{"Range", "bytes=0-1"}}), out).status == 404);
  CHECK(cut_to_range(200, lines, "", get_with({{"Range", "bytes=0-1"}}), out).status == 416);
}

}  // namespace
}  // namespace cachecar
