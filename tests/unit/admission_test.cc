// router/admission.h: the first stage, a well-formed target and a Host this cachecar serves.

#include "router/admission.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "unit_support.h"

namespace cachecar {
namespace {

constexpr std::string_view kShop = "hosts: [shop.example]\n";
constexpr std::string_view kAnyHost = "hosts: []\n";

RequestHead make_head(std::string_view target, std::vector<std::string_view> hosts = {"shop.example"},
                      HttpVersion version = {1, 1}) {
  RequestHead head;
  head.method = "GET";
  head.target = std::string(target);
  head.version = version;
  for (std::string_view host : hosts) {
    head.headers.add("Host", std::string(host));
  }
  return head;
}

TEST_CASE("admit_request: a well-formed request is admitted, its target normalised") {
  struct Case {
    std::string_view target;
    std::string_view normal;
  };
  const Case cases[] = {
      {"/products/42", "/products/42"},
      {"/products/42?x=1", "/products/42?x=1"},
      {"/a/../b", "/b"},
      {"/a/./b", "/a/b"},
      {"//a//b", "/a/b"},
      {"/%7Euser/%41", "/~user/A"},    // escapes of unreserved characters decoded
      {"/a%2fb", "/a%2Fb"},            // other escapes upper-cased
      {"/a/../b?q=%7e/../x", "/b?q=%7e/../x"},  // the query is kept as sent
      {"/", "/"},
  };
  const Config config = parse_ok(kShop);
  for (const Case& c : cases) {
    CAPTURE(c.target);
    RequestHead head = make_head(c.target);
    const std::optional<Refusal> refusal = admit_request(head, config);
    CHECK_FALSE(refusal.has_value());
    CHECK(head.target == c.normal);
  }
}

TEST_CASE("admit_request: a malformed target is refused 400 and the connection closed") {
  const std::string_view cases[] = {
      "/../x",                    // climbs above the root
      "/a/../../x",
      "/a%zz",                    // broken escapes
      "/a%4",
      "/a%00b",                   // NUL
      "*",                        // not origin-form
      "http://shop.example/x",
      "",
  };
  const Config config = parse_ok(kShop);
  for (std::string_view target : cases) {
    CAPTURE(target);
    RequestHead head = make_head(target);
    const std::optional<Refusal> refusal = admit_request(head, config);
    REQUIRE(refusal.has_value());
    CHECK(refusal->status == 400);
    CHECK(refusal->close_connection);
    CHECK_FALSE(refusal->reason.empty());
  }
}

TEST_CASE("admit_request: the Host field") {
  struct Case {
    std::string_view name;
    std::string_view yaml;
    std::vector<std::string_view> hosts;  // Host fields sent
    HttpVersion version;
    int status;  // 0: admitted
    bool close;
  };
  const Case cases[] = {
      {"a served host", kShop, {"shop.example"}, {1, 1}, 0, false},
      {"with a port", kShop, {"shop.example:8080"}, {1, 1}, 0, false},
      {"in upper case", kShop, {"SHOP.Example"}, {1, 1}, 0, false},
      {"missing on HTTP/1.1", kShop, {}, {1, 1}, 400, true},
      {"missing on HTTP/1.1 with any host served", kAnyHost, {}, {1, 1}, 400, true},
      {"twice", kShop, {"shop.example", "shop.example"}, {1, 1}, 400, true},
      {"not a host", kShop, {"shop example"}, {1, 1}, 400, true},
      {"not served here", kShop, {"other.example"}, {1, 1}, 421, false},
      {"a subdomain of a served host", kShop, {"a.shop.example"}, {1, 1}, 421, false},
      {"any host served", kAnyHost, {"other.example"}, {1, 1}, 0, false},
      {"missing on HTTP/1.0, any host served", kAnyHost, {}, {1, 0}, 0, false},
      {"missing on HTTP/1.0, hosts listed", kShop, {}, {1, 0}, 421, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Config config = parse_ok(c.yaml);
    RequestHead head = make_head("/a/../b", c.hosts, c.version);
    const std::optional<Refusal> refusal = admit_request(head, config);
    if (c.status == 0) {
      CHECK_FALSE(refusal.has_value());
      CHECK(head.target == "/b");
      continue;
    }
    REQUIRE(refusal.has_value());
    CHECK(refusal->status == c.status);
    CHECK(refusal->close_connection == c.close);
    CHECK_FALSE(refusal->reason.empty());
  }
}

TEST_CASE("admit_request: a broken target is refused before the Host is looked at") {
  const Config config = parse_ok(kShop);
  RequestHead head = make_head("/../x", {"other.example"});
  const std::optional<Refusal> refusal = admit_request(head, config);
  REQUIRE(refusal.has_value());
  CHECK(refusal->status == 400);
  CHECK(refusal->close_connection);
}

}  // namespace
}  // namespace cachecar
