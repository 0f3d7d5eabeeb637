#include "cache/vary.h"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "unit_support.h"

namespace cachecar {
namespace {

TEST_CASE("parse_vary: the field names, lower case, sorted, once; * for any") {
  struct Case {
    Headers headers;
    bool any;
    std::vector<std::string> names;
  };
  const Case cases[] = {
      {headers_of({}), false, {}},
      {headers_of({{"Vary", ""}}), false, {}},
      {headers_of({{"Vary", "Accept-Encoding"}}), false, {"accept-encoding"}},
      {headers_of({{"Vary", "Accept-Language, accept-encoding"}}),
       false,
       {"accept-encoding", "accept-language"}},
      {headers_of({{"Vary", " ,Accept , ,ACCEPT,"}}), false, {"accept"}},
      {headers_of({{"Vary", "Accept"}, {"vary", "Origin"}}), false, {"accept", "origin"}},
      {headers_of({{"Vary", "*"}}), true, {}},
      {headers_of({{"Vary", "Accept, *"}}), true, {"accept"}},
  };
  for (const Case& c : cases) {
    const VaryFields vary = parse_vary(c.headers);
    CHECK(vary.any == c.any);
    CHECK(vary.names == c.names);
  }
}

TEST_CASE("variant_selector: normalized values; absent is not empty") {
  const VaryFields vary = parse_vary(headers_of({{"Vary", "Accept-Language, Accept-Encoding"}}));
  struct Case {
    std::string name;
    Headers request;
    std::string expected;
  };
  const Case cases[] = {
      {"both present", headers_of({{"Accept-Encoding", "gzip"}, {"Accept-Language", "en"}}),
       "accept-encoding=gzip\naccept-language=en"},
      {"one absent", headers_of({{"accept-encoding", "gzip"}}),
       "accept-encoding=gzip\naccept-language"},
      {"one empty", headers_of({{"Accept-Encoding", "gzip"}, {"Accept-Language", ""}}),
       "accept-encoding=gzip\naccept-language="},
      {"whitespace normalized",
       headers_of(
           {{"Accept-Encoding", "  gzip ,   br  "}, {"Accept-Language", "en-GB,\ten;q=0.8"}}),
       "accept-encoding=gzip, br\naccept-language=en-gb, en;q=0.8"},
      {"language ranges and codings in any case",
       headers_of({{"Accept-Encoding", "GZip, BR"}, {"Accept-Language", "eN, De"}}),
       "accept-encoding=gzip, br\naccept-language=en, de"},
      {"inner runs made one space", headers_of({{"Accept-Language", "en  \t GB"}}),
       "accept-encoding\naccept-language=en gb"},
      {"field lines joined", headers_of({{"Accept-Encoding", "gzip"}, {"Accept-Encoding", "br"}}),
       "accept-encoding=gzip, br\naccept-language"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(variant_selector(vary, c.request) == c.expected);
  }
  // The same variant, however the request spelled it.
  CHECK(variant_selector(vary, headers_of({{"Accept-Encoding", "gzip,br"}})) ==
        variant_selector(vary, headers_of({{"ACCEPT-ENCODING", " gzip , br"}})));
  CHECK(variant_selector(parse_vary(headers_of({})), headers_of({{"Accept", "x"}})).empty());
  // Other fields keep their case: a value may be case-sensitive where its field says so.
  const VaryFields by_user = parse_vary(headers_of({{"Vary", "X-Tenant"}}));
  CHECK(variant_selector(by_user, headers_of({{"X-Tenant", "Acme"}})) !=
        variant_selector(by_user, headers_of({{"X-Tenant", "acme"}})));
}

TEST_CASE("selector_digest: fixed length, one per selector") {
  const std::string a = selector_digest("accept-encoding=gzip");
  CHECK(a.size() == 32);
  CHECK(a == selector_digest("accept-encoding=gzip"));
  CHECK(a != selector_digest("accept-encoding=br"));
  CHECK(selector_digest("") != selector_digest("accept-encoding"));
  // SHA-256("abc") begins ba7816bf8f01cfea414140de5dae2223.
  CHECK(selector_digest("abc") == "ba7816bf8f01cfea414140de5dae2223");
}

TEST_CASE("vary index: the names round-trip; anything else is not an index") {
  const VaryFields vary =
      parse_vary(headers_of({{"Vary", "Accept-Language, accept-encoding"}}));
  const std::string index = encode_vary_index(vary);
  CHECK(index == "CCV1accept-encoding,accept-language");
  const auto decoded = decode_vary_index(index);
  REQUIRE(decoded);
  CHECK(decoded->names == vary.names);
  CHECK_FALSE(decoded->any);
  for (const char* bad : {"", "CCV1", "CCE1abc", "CCV1Accept", "CCV1a,,b", "CCV1a,", "CCV1b,a",
                          "CCV1a,a", "CCV1a b", "CCV1a\r\nb"}) {
    CAPTURE(bad);
    CHECK_FALSE(decode_vary_index(bad));
  }
}

}  // namespace
}  // namespace cachecar
