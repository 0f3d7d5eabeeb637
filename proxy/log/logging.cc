#include "log/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>

#include "http/error_page.h"

namespace cachecar {
namespace {

std::atomic<bool> g_access_enabled{true};
std::atomic<LogFormat> g_format{LogFormat::Text};
thread_local bool t_access_pending = false;

// %*: the message escaped for a JSON string, so error lines stay one valid JSON object.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), escaped);
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// spdlog's stdout sink flushes after every line, a write(2) per request; this one leaves the
// line in stdio's buffer for flush_access_log(). Lines stay whole: stdio locks each fwrite, and
// the event log's sink writes to the same FILE.
class DeferredStdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

// Each logger has its own sink: spdlog keeps the formatter in the sink, and the access log's
// bare "%v" must not replace the event log's pattern.
std::shared_ptr<spdlog::logger> access_logger() {
  static auto logger = [] {
    auto created =
        std::make_shared<spdlog::logger>("access", std::make_shared<DeferredStdoutSink>());
    created->set_pattern("%v");
    created->set_level(spdlog::level::info);
    created->flush_on(spdlog::level::off);
    return created;
  }();
  return logger;
}

void append_ms(double ms, std::string& out) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3f", ms);
  out += buffer;
}

}  // namespace

void setup_logging(const Config::Log& log) {
  auto logger = spdlog::get("cachecar");
  if (!logger) {
    logger = std::make_shared<spdlog::logger>("cachecar",
                                              std::make_shared<spdlog::sinks::stdout_sink_mt>());
    spdlog::set_default_logger(logger);
  }
  if (log.format == LogFormat::Json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l [%t] %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(log.level));
  // Errors reach the terminal at once; info lines may wait for the next flush.
  logger->flush_on(spdlog::level::info);
  g_access_enabled = log.access;
  g_format = log.format;
  access_logger();
}

namespace {

// Text that clients chose (a target, a user name): quotes and control bytes escaped, so a line
// stays one line and its fields stay apart.
void append_escaped_text(std::string_view text, std::string& out) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f || c == '"' || c == '\\' || c == ' ') {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", byte);
      out += hex;
    } else {
      out += c;
    }
  }
}

}  // namespace

std::string format_access(const AccessRecord& r, LogFormat format) {
  std::string out;
  out.reserve(160);
  if (format == LogFormat::Json) {
    out += R"({"type":"access","client":")";
    append_json_escaped(r.client, out);
    out += R"(","method":")";
    append_json_escaped(r.method, out);
    out += R"(","target":")";
    append_json_escaped(r.target, out);
    out += R"(","status":)";
    out += std::to_string(r.status);
    out += R"(,"bytes":)";
    out += std::to_string(r.bytes);
    out += R"(,"upstream_ms":)";
    if (r.upstream_ms < 0) {
      out += "null";
    } else {
      append_ms(r.upstream_ms, out);
    }
    out += R"(,"total_ms":)";
    append_ms(r.total_ms, out);
    if (r.cache != CacheStatus::None) {
      out += R"(,"cache":")";
      out += cache_status_name(r.cache);
      out += '"';
    }
    if (!r.user.empty()) {
      out += R"(,"user":")";
      append_json_escaped(r.user, out);
      out += '"';
    }
    out += '}';
    return out;
  }
  out += r.client;
  out += " \"";
  out += r.method;
  out += ' ';
  append_escaped_text(r.target, out);
  out += "\" ";
  out += std::to_string(r.status);
  out += ' ';
  out += std::to_string(r.bytes);
  out += " upstream=";
  if (r.upstream_ms < 0) {
    out += '-';
  } else {
    append_ms(r.upstream_ms, out);
    out += "ms";
  }
  out += " total=";
  append_ms(r.total_ms, out);
  out += "ms";
  if (r.cache != CacheStatus::None) {
    out += " cache=";
    out += cache_status_name(r.cache);
  }
  if (!r.user.empty()) {
    out += " user=";
    append_escaped_text(r.user, out);
  }
  return out;
}

void log_access(const AccessRecord& record) {
  if (!g_access_enabled.load(std::memory_order_relaxed)) {
    return;
  }
  access_logger()->info(format_access(record, g_format.load(std::memory_order_relaxed)));
  t_access_pending = true;
}

void flush_access_log() {
  if (t_access_pending) {
    t_access_pending = false;
    access_logger()->flush();
  }
}

}  // namespace cachecar
