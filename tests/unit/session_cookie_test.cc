// session/session_cookie.h and session/session_record.h: express-session's cookie and
// connect-redis's record, read as the Express app reads them.

#include "session/session_cookie.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "session/session_record.h"
#include "unit_support.h"

namespace cachecar {
namespace {

// node -e "crypto.createHmac('sha256','keyboard cat').update('sid-123').digest('base64')"
constexpr std::string_view kSigned = "s:sid-123.GSsj2AdX2rT7VDXNNAZWaM8iQDiHRVvVpQ5w2o6G3dE";
constexpr std::string_view kSignedEncoded =
    "s%3Asid-123.GSsj2AdX2rT7VDXNNAZWaM8iQDiHRVvVpQ5w2o6G3dE";

TEST_CASE("sign_session_cookie matches cookie-signature") {
  // cookie-signature's README: sign('hello', 'tobiiscool').
  CHECK(sign_session_cookie("hello", "tobiiscool") ==
        "s:hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI");
  CHECK(sign_session_cookie("sid-123", "keyboard cat") == kSigned);
}

TEST_CASE("unsign_session_cookie: any listed secret verifies; nothing else does") {
  const std::vector<std::string> current{"keyboard cat"};
  const std::vector<std::string> rotated{"new secret", "keyboard cat"};
  const std::vector<std::string> removed{"new secret"};
  CHECK(unsign_session_cookie(kSigned, current) == "sid-123");
  CHECK(unsign_session_cookie(kSigned, rotated) == "sid-123");
  CHECK_FALSE(unsign_session_cookie(kSigned, removed));
  CHECK_FALSE(unsign_session_cookie(kSigned, {}));
  struct Case {
    std::string name;
    std::string value;
  };
  const std::vector<Case> forged = {
      {"a tampered sid", "s:sid-124.GSsj2AdX2rT7VDXNNAZWaM8iQDiHRVvVpQ5w2o6G3dE"},
      {"a tampered signature", "s:sid-123.GSsj2AdX2rT7VDXNNAZWaM8iQDiHRVvVpQ5w2o6G3dF"},
      {"padding kept", std::string(kSigned) + "="},
      {"signature cut", std::string(kSigned.substr(0, kSigned.size() - 1))},
      {"unsigned", "sid-123"},
      {"no s: prefix", std::string(kSigned.substr(2))},
      {"no dot", "s:sid-123"},
      {"empty", ""},
  };
  for (const Case& c : forged) {
    CAPTURE(c.name);
    CHECK_FALSE(unsign_session_cookie(c.value, current));
  }
  // A sid with dots: the last dot separates the signature.
  const std::string dotted = sign_session_cookie("a.b.c", "keyboard cat");
  CHECK(unsign_session_cookie(dotted, current) == "a.b.c");
}

TEST_CASE("find_cookie reads Cookie as the cookie package does") {
  struct Case {
    std::string name;
    Headers request;
    std::optional<std::string> value;
  };
  const std::vector<Case> cases = {
      {"encoded", headers_of({{"Cookie", "connect.sid=" + std::string(kSignedEncoded)}}),
       std::string(kSigned)},
      {"among others, with spaces",
       headers_of({{"Cookie", "a=1;  connect.sid = s%3Ax.y ; b=2"}}), "s:x.y"},
      {"the first of the name wins",
       headers_of({{"Cookie", "connect.sid=first; connect.sid=second"}}), "first"},
      {"across Cookie lines", headers_of({{"Cookie", "a=1"}, {"Cookie", "connect.sid=v"}}), "v"},
      {"first across lines",
       headers_of({{"Cookie", "connect.sid=one"}, {"Cookie", "connect.sid=two"}}), "one"},
      {"quoted", headers_of({{"Cookie", "connect.sid=\"s%3Aq.r\""}}), "s:q.r"},
      {"decoded only with %", headers_of({{"Cookie", "connect.sid=a+b"}}), "a+b"},
      {"a malformed escape is kept", headers_of({{"Cookie", "connect.sid=a%zz"}}), "a%zz"},
      {"invalid UTF-8 is kept", headers_of({{"Cookie", "connect.sid=%ff"}}), "%ff"},
      {"UTF-8 decoded", headers_of({{"Cookie", "connect.sid=%C3%A9"}}), "\xc3\xa9"},
      {"a similar name", headers_of({{"Cookie", "connect.sidx=1; xconnect.sid=2"}}),
       std::nullopt},
      {"no cookie", headers_of({}), std::nullopt},
      {"no =", headers_of({{"Cookie", "connect.sid"}}), std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CHECK(find_cookie(c.request, "connect.sid") == c.value);
  }
}

TEST_CASE("read_session_record: the user and originalMaxAge, or no session") {
  const auto record = read_session_record(
      R"({"cookie":{"originalMaxAge":86400000,"expires":"2026-12-07T00:00:00.000Z",)"
      R"("httpOnly":true,"path":"/"},"passport":{"user":"42"}})",
      "passport.user");
  REQUIRE(record);
  CHECK(record->user == "42");
  CHECK(record->original_max_age_ms == 86400000);

  CHECK(read_session_record(R"({"passport":{"user":7}})", "passport.user")->user == "7");
  CHECK(read_session_record(R"({"userId":"u1"})", "userId")->user == "u1");
  CHECK_FALSE(read_session_record(R"({"passport":{}})", "passport.user")->user);
  CHECK_FALSE(read_session_record(R"({"passport":{"user":{"id":1}}})", "passport.user")->user);
  CHECK_FALSE(read_session_record(R"({"passport":{"user":"a\r\nX-Evil: 1"}})", "passport.user")
                  ->user);
  // A recipient would strip the spaces: " admin" must not become "admin".
  for (const char* padded : {R"({"u":" admin"})", R"({"u":"admin "})", R"({"u":"\tadmin"})",
                             R"({"u":""})"}) {
    CAPTURE(padded);
    CHECK_FALSE(read_session_record(padded, "u")->user);
  }
  CHECK(read_session_record(R"({"u":"ad min"})", "u")->user == "ad min");
  CHECK_FALSE(read_session_record(R"({"cookie":{"originalMaxAge":null}})", "u")
                  ->original_max_age_ms);
  for (const char* foreign : {"", "not json", "[1,2]", "\"s\"", "{\"a\":", "42"}) {
    CAPTURE(foreign);
    CHECK_FALSE(read_session_record(foreign, "passport.user"));
  }
}

}  // namespace
}  // namespace cachecar
