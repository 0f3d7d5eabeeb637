#include "cache/freshness.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "http/chars.h"

namespace cachecar {
namespace {

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

int days_in_month(int year, int month) {
  static constexpr int kLengths[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kLengths[month - 1];
}

// Reads the text a date is made of, left to right; any mismatch makes ok() false for good.
// Names (days, months, "GMT") match in any case: RFC 9110 §5.6.7 spells them case-sensitively
// but asks recipients to be robust in parsing timestamps, and `THU, 18 AUG 2050` still says
// when; reading it as "already expired" would throw the response away.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : rest_(text) {}

  bool ok() const { return ok_; }
  bool done() const { return ok_ && rest_.empty(); }

  void literal(std::string_view expected) {
    if (ok_ && iequals(rest_.substr(0, expected.size()), expected)) {
      rest_.remove_prefix(expected.size());
    } else {
      ok_ = false;
    }
  }
  // Exactly `width` digits.
  int digits(size_t width) {
    int value = 0;
    if (!ok_ || rest_.size() < width) {
      ok_ = false;
      return 0;
    }
    const auto [end, ec] = std::from_chars(rest_.data(), rest_.data() + width, value);
    if (ec != std::errc() || end != rest_.data() + width ||
        !std::all_of(rest_.begin(), rest_.begin() + static_cast<std::ptrdiff_t>(width),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      ok_ = false;
      return 0;
    }
    rest_.remove_prefix(width);
    return value;
  }
  // One of `names`; its index.
  template <size_t N>
  int one_of(const std::array<std::string_view, N>& names) {
    for (size_t i = 0; ok_ && i < N; ++i) {
      if (iequals(rest_.substr(0, names[i].size()), names[i])) {
        rest_.remove_prefix(names[i].size());
        return static_cast<int>(i);
      }
    }
    ok_ = false;
    return 0;
  }
  char peek() const { return ok_ && !rest_.empty() ? rest_.front() : '\0'; }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

struct Civil {
  int year = 0;
  int month = 0;  // 1..12
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

void read_time(Cursor& in, Civil& date) {
  date.hour = in.digits(2);
  in.literal(":");
  date.minute = in.digits(2);
  in.literal(":");
  date.second = in.digits(2);
}

std::optional<int64_t> to_unix(const Civil& date) {
  if (date.month < 1 || date.month > 12 || date.day < 1 ||
      date.day > days_in_month(date.year, date.month) || date.hour > 23 || date.minute > 59 ||
      date.second > 60) {  // a leap second is a valid time-of-day (RFC 5322 §3.3)
    return std::nullopt;
  }
  return days_from_civil(date.year, date.month, date.day) * 86400 + date.hour * 3600 +
         date.minute * 60 + date.second;
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<int64_t> imf_fixdate(std::string_view text) {
  Cursor in(text);
  Civil date;
  in.one_of(kDays);
  in.literal(", ");
  date.day = in.digits(2);
  in.literal(" ");
  date.month = in.one_of(kMonths) + 1;
  in.literal(" ");
  date.year = in.digits(4);
  in.literal(" ");
  read_time(in, date);
  in.literal(" GMT");
  return in.done() ? to_unix(date) : std::nullopt;
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<int64_t> rfc850_date(std::string_view text) {
  Cursor in(text);
  Civil date;
  in.one_of(kLongDays);
  in.literal(", ");
  date.day = in.digits(2);
  in.literal("-");
  date.month = in.one_of(kMonths) + 1;
  in.literal("-");
  const int two_digit_year = in.digits(2);
  in.literal(" ");
  read_time(in, date);
  in.literal(" GMT");
  // RFC 9110 §5.6.7 reads a two-digit year as the most recent past year with those digits
  // when it would be more than 50 years ahead; without a clock here, 70 is the pivot.
  date.year = two_digit_year + (two_digit_year >= 70 ? 1900 : 2000);
  return in.done() ? to_unix(date) : std::nullopt;
}

// "Sun Nov  6 08:49:37 1994"
std::optional<int64_t> asctime_date(std::string_view text) {
  Cursor in(text);
  Civil date;
  in.one_of(kDays);
  in.literal(" ");
  date.month = in.one_of(kMonths) + 1;
  in.literal(" ");
  if (in.peek() == ' ') {
    in.literal(" ");
    date.day = in.digits(1);
  } else {
    date.day = in.digits(2);
  }
  in.literal(" ");
  read_time(in, date);
  in.literal(" ");
  date.year = in.digits(4);
  return in.done() ? to_unix(date) : std::nullopt;
}

std::optional<int64_t> date_field(const Headers& headers, std::string_view name) {
  const auto value = headers.get(name);
  return value ? parse_http_date(trim_ows(*value)) : std::nullopt;
}

// The Age field's delta-seconds (§5.1); a response without a usable one has age 0. Age is a
// single value, but a sender that made it a list (`7200, 0`, often two caches each adding
// their own) or gave it parameters (`7200;x=1`) still means its first number: reading that
// as "no Age" would make an old response fresh.
int64_t age_value(const Headers& headers) {
  const auto value = headers.get("Age");
  if (!value) {
    return 0;
  }
  std::string_view text = *value;
  text = text.substr(0, text.find(','));
  text = trim_ows(text.substr(0, text.find(';')));
  int64_t age = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), age);
  if (ec == std::errc::result_out_of_range) {
    return kDeltaSecondsCap;
  }
  return ec == std::errc() && end == text.data() + text.size() && age >= 0
             ? std::min(age, kDeltaSecondsCap)
             : 0;
}

bool stale_forbidden(const ResponseCacheControl& response) {
  // §5.2.2.2, §5.2.2.8; s-maxage implies proxy-revalidate for a shared cache (§5.2.2.10).
  return response.must_revalidate || response.proxy_revalidate || response.s_maxage ||
         response.no_cache;
}

}  // namespace

std::optional<int64_t> parse_http_date(std::string_view text) {
  if (auto date = imf_fixdate(text)) {
    return date;
  }
  if (auto date = rfc850_date(text)) {
    return date;
  }
  return asctime_date(text);
}

bool heuristically_cacheable(int status) {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

std::optional<int64_t> freshness_lifetime(int status, const ResponseCacheControl& control,
                                          const Headers& response, int64_t response_time,
                                          int64_t heuristic_max) {
  if (control.s_maxage) {
    return *control.s_maxage;
  }
  if (control.max_age) {
    return *control.max_age;
  }
  const int64_t date = date_field(response, "Date").value_or(response_time);
  if (response.contains("Expires")) {
    const auto expires = date_field(response, "Expires");
    // An Expires centuries ahead is a lifetime as long as delta-seconds can say (§1.2.2).
    return expires ? std::clamp<int64_t>(*expires - date, 0, kDeltaSecondsCap) : 0;
  }
  if (!heuristically_cacheable(status) && !control.is_public) {
    return std::nullopt;
  }
  const auto last_modified = date_field(response, "Last-Modified");
  if (!last_modified || *last_modified > date) {
    return std::nullopt;
  }
  // §4.2.2: "no more than some fraction of the interval since that time"; 10%, as is typical.
  return std::min((date - *last_modified) / 10, heuristic_max);
}

int64_t initial_age(const Headers& response, int64_t request_time, int64_t response_time) {
  const int64_t date = date_field(response, "Date").value_or(response_time);
  const int64_t apparent_age = std::max<int64_t>(0, response_time - date);
  const int64_t response_delay = std::max<int64_t>(0, response_time - request_time);
  const int64_t corrected_age_value = age_value(response) + response_delay;
  return std::max(apparent_age, corrected_age_value);
}

Servable servable(int64_t lifetime, int64_t age, const ResponseCacheControl& response,
                  const RequestCacheControl& request) {
  if (request.no_cache || response.no_cache) {
    return Servable::MustValidate;
  }
  if (request.max_age && age > *request.max_age) {
    return Servable::MustValidate;
  }
  const int64_t fresh_for = lifetime - age;  // negative: stale by that much
  if (fresh_for > 0) {
    return request.min_fresh && fresh_for < *request.min_fresh ? Servable::MustValidate
                                                               : Servable::Fresh;
  }
  if (stale_forbidden(response)) {
    return Servable::MustValidate;
  }
  const int64_t staleness = -fresh_for;
  if (request.max_stale_any || (request.max_stale && staleness <= *request.max_stale)) {
    return Servable::StaleAllowed;
  }
  return Servable::MustValidate;
}

bool may_serve_while_revalidating(int64_t lifetime, int64_t age,
                                  const ResponseCacheControl& response) {
  return !stale_forbidden(response) && response.stale_while_revalidate &&
         age - lifetime <= *response.stale_while_revalidate;
}

bool may_serve_on_error(int64_t lifetime, int64_t age, const ResponseCacheControl& response,
                        std::optional<int64_t> configured) {
  const std::optional<int64_t> window =
      response.stale_if_error ? response.stale_if_error : configured;
  return !stale_forbidden(response) && window && age - lifetime <= *window;
}

}  // namespace cachecar
