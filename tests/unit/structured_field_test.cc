#include "http/structured_field.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace cachecar {
namespace {

// The members as "key:type:value" text, or "invalid".
std::string describe(std::string_view value) {
  const auto members = parse_sf_dictionary(value);
  if (!members) {
    return "invalid";
  }
  std::string out;
  for (const SfMember& member : *members) {
    if (!out.empty()) {
      out += ' ';
    }
    out += member.key;
    switch (member.type) {
      case SfType::Boolean:
        out += member.boolean ? ":true" : ":false";
        break;
      case SfType::Integer:
        out += ":int=" + std::to_string(member.integer);
        break;
      case SfType::Decimal:
        out += ":decimal";
        break;
      case SfType::String:
        out += ":string=" + member.text;
        break;
      case SfType::Token:
        out += ":token=" + member.text;
        break;
      case SfType::ByteSequence:
        out += ":bytes";
        break;
      case SfType::InnerList:
        out += ":list";
        break;
    }
  }
  return out;
}

TEST_CASE("parse_sf_dictionary: RFC 8941 §4.2.2, valid and not") {
  struct Case {
    std::string_view value;
    std::string expected;
  };
  const Case cases[] = {
      {"", ""},
      {"   ", ""},
      {"no-store", "no-store:true"},
      {"max-age=60, no-store", "max-age:int=60 no-store:true"},
      {"  max-age=60 ,\tpublic  ", "max-age:int=60 public:true"},
      {"a=-5", "a:int=-5"},
      {"a=1.5", "a:decimal"},
      {"a=123456789012.123", "a:decimal"},
      {"a=999999999999999", "a:int=999999999999999"},
      {"a=\"x, \\\"y\\\" \\\\ z\"", "a:string=x, \"y\" \\ z"},
      {"a=tok/en:x", "a:token=tok/en:x"},
      {"a=*star", "a:token=*star"},
      {"a=:aGVsbG8=:", "a:bytes"},
      {"a=?0, b=?1", "a:false b:true"},
      {"a=(1 \"two\" three);p=1", "a:list"},
      {"a=()", "a:list"},
      {"a;p, b=1;q=\"v\";r", "a:true b:int=1"},
      {"*key_1.x-y=1", "*key_1.x-y:int=1"},
      {"a=1, a=2, b", "a:int=2 b:true"},  // first position, last value
      // Not Dictionaries.
      {"MAX-AGE=60", "invalid"},
      {"max-age= 60", "invalid"},
      {"max-age =60", "invalid"},
      {"max-age=60,", "invalid"},
      {",max-age=60", "invalid"},
      {"a=1 b=2", "invalid"},
      {"a=10000, &&&&&", "invalid"},
      {"1a=1", "invalid"},
      {"a=1.", "invalid"},
      {"a=1.2345", "invalid"},
      {"a=1234567890123.1", "invalid"},
      {"a=1234567890123456", "invalid"},
      {"a=-", "invalid"},
      {"a=\"open", "invalid"},
      {"a=\"bad \\n escape\"", "invalid"},
      {"a=\"tab\there\"", "invalid"},
      {"a=:not base64!:", "invalid"},
      {"a=:open", "invalid"},
      {"a=?2", "invalid"},
      {"a=(1 2", "invalid"},
      {"a=(1,2)", "invalid"},
      {"a;", "invalid"},
      {"a;P=1", "invalid"},
      {"a=%", "invalid"},
      {"\ta=1", "invalid"},  // only SP may lead (§4.2 step 1)
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    CHECK(describe(c.value) == c.expected);
  }
  // At most 1024 members (§3.2's minimum): one more and the field is not read at all.
  auto members = [](int count) {
    std::string value;
    for (int i = 0; i < count; ++i) {
      value += (i == 0 ? "k" : ", k") + std::to_string(i);
    }
    return value;
  };
  REQUIRE(parse_sf_dictionary(members(1024)));
  CHECK(parse_sf_dictionary(members(1024))->size() == 1024);
  CHECK_FALSE(parse_sf_dictionary(members(1025)));
}

}  // namespace
}  // namespace cachecar
