#include "router/exchange.h"

#include <spdlog/spdlog.h>

#include "http/error_page.h"
#include "http/headers.h"
#include "http/writer.h"
#include "log/logging.h"
#include "upstream/pool.h"

namespace cachecar {
namespace {

double elapsed_ms(uint64_t from_ns, uint64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

}  // namespace

Exchange::Exchange(WorkerContext& context, ClientSession& client, RequestHead head)
    : context_(context),
      client_(client),
      config_(context.config),
      head_(std::move(head)),
      started_ns_(uv_hrtime()) {}

Exchange::~Exchange() {
  if (upstream_ != nullptr) {
    upstream_->detach();
  }
  AccessRecord record;
  record.client = client_.peer_address();
  record.method = head_.method;
  record.target = head_.target;
  // 499, as nginx logs it: the client went away before its response was complete.
  record.status = response_finished_ ? status_ : 499;
  record.bytes = body_bytes_sent_;
  record.upstream_ms =
      upstream_head_ns_ != 0 ? elapsed_ms(upstream_started_ns_, upstream_head_ns_) : -1;
  record.total_ms = elapsed_ms(started_ns_, uv_hrtime());
  log_access(record);
}

void Exchange::start() {
  const std::string client_address(client_.peer_address());
  prepare_upstream_request_headers(head_.headers, ForwardingInfo{client_address, "http"});
  const std::string& prefix = config_->upstream.url.path_prefix;
  write_request_head(head_, prefix.empty() ? head_.target : prefix + head_.target, upstream_head_);
  forward(false);
}

void Exchange::forward(bool fresh_connection) {
  upstream_ = context_.upstream->acquire(fresh_connection);
  if (upstream_ == nullptr) {
    respond_error(502, "upstream unavailable");
    return;
  }
  upstream_->attach(*this, head_.method == "HEAD");
  if (upstream_started_ns_ == 0) {
    upstream_started_ns_ = uv_hrtime();
  }
  upstream_->send(upstream_head_);
  if (!replay_body_.empty()) {
    upstream_->send(replay_body_);
  }
  if (request_complete_) {
    upstream_->finish_request();
  }
}

void Exchange::send_to_upstream(std::string bytes) {
  if (body_replayable_ && !response_started_) {
    if (replay_body_.size() + bytes.size() <= kReplayLimit) {
      replay_body_ += bytes;
    } else {
      body_replayable_ = false;
      std::string().swap(replay_body_);
    }
  }
  if (upstream_ == nullptr) {
    return;
  }
  upstream_->send(std::move(bytes));
  if (upstream_ != nullptr && upstream_->congested()) {
    client_.pause_reading();
  }
}

void Exchange::on_request_body(std::string_view chunk) {
  if (response_finished_) {
    return;  // answered already (e.g. an early error); the connection closes after it
  }
  std::string framed;
  if (head_.framing == BodyFraming::Chunked) {
    write_chunk(chunk, framed);
  } else {
    framed.assign(chunk);
  }
  send_to_upstream(std::move(framed));
}

void Exchange::on_request_complete() {
  request_complete_ = true;
  if (response_finished_) {
    return;
  }
  if (head_.framing == BodyFraming::Chunked) {
    std::string last;
    write_last_chunk(last);
    send_to_upstream(std::move(last));
  }
  if (upstream_ != nullptr) {
    upstream_->finish_request();
  }
}

void Exchange::on_client_drained() {
  if (upstream_paused_ && upstream_ != nullptr) {
    upstream_paused_ = false;
    upstream_->resume_reading();
  }
}

void Exchange::on_upstream_drained() { client_.resume_reading(); }

void Exchange::on_upstream_head(ResponseHead& head) {
  upstream_head_ns_ = uv_hrtime();
  status_ = head.status;
  std::string().swap(replay_body_);
  body_replayable_ = false;

  prepare_client_response_headers(head.headers);
  // A response that starts before the request body was read whole leaves unread bytes on the
  // connection: close it afterwards rather than parse them as a request.
  keep_alive_ = head_.keep_alive && client_.may_keep_alive() && request_complete_;

  ResponseFraming framing;
  const bool head_request = head_.method == "HEAD";
  if (head_request || head.framing == BodyFraming::None) {
    framing.framing = BodyFraming::None;
    framing.announce_length = head.length_announced && head.status != 204;
    framing.content_length = head.content_length;
  } else if (head.framing == BodyFraming::ContentLength) {
    framing.framing = BodyFraming::ContentLength;
    framing.content_length = head.content_length;
  } else if (head_.version.at_least_1_1()) {
    framing.framing = BodyFraming::Chunked;
    client_chunked_ = true;
  } else {
    // An HTTP/1.0 client cannot read chunks: the end of the body is the end of the connection.
    framing.framing = BodyFraming::UntilClose;
    keep_alive_ = false;
  }
  if (keep_alive_ && !head_.version.at_least_1_1()) {
    head.headers.add("Connection", "keep-alive");
  }
  framing.keep_alive = keep_alive_;

  std::string out;
  out.reserve(256 + head.headers.size() * 48);
  write_response_head(head.status, head.reason, head.headers, framing, out);
  response_started_ = true;
  client_.send(std::move(out));
}

void Exchange::on_upstream_body(std::string_view chunk) {
  body_bytes_sent_ += chunk.size();
  std::string framed;
  if (client_chunked_) {
    write_chunk(chunk, framed);
  } else {
    framed.assign(chunk);
  }
  client_.send(std::move(framed));
  if (upstream_ != nullptr && !upstream_paused_ && client_.send_congested()) {
    upstream_paused_ = true;
    upstream_->pause_reading();
  }
}

void Exchange::on_upstream_complete() {
  upstream_ = nullptr;
  if (client_chunked_) {
    std::string last;
    write_last_chunk(last);
    client_.send(std::move(last));
  }
  finish(keep_alive_);
}

void Exchange::on_upstream_error(UpstreamError error, bool retryable) {
  upstream_ = nullptr;
  if (response_started_) {
    spdlog::warn("{} {}: upstream failed mid-response ({}); closing the client connection",
                 head_.method, head_.target, label(error));
    client_.abort_response();
    return;
  }
  if (retryable && !retried_ && body_replayable_ && is_idempotent_method(head_.method)) {
    // A pooled connection the upstream had closed: the request never reached it.
    retried_ = true;
    spdlog::debug("{} {}: pooled upstream connection closed; retrying on a new one", head_.method,
                  head_.target);
    forward(true);
    return;
  }
  respond_error(status_for(error), describe(error));
}

void Exchange::respond_error(int status, std::string_view message) {
  status_ = status;
  keep_alive_ = request_complete_ && head_.keep_alive && client_.may_keep_alive();
  response_started_ = true;
  std::string bytes = error_response(status, message, keep_alive_, {}, head_.method == "HEAD");
  body_bytes_sent_ = head_.method == "HEAD" ? 0 : json_error_body(message).size();
  client_.send(std::move(bytes));
  finish(keep_alive_);
}

void Exchange::finish(bool keep_alive) {
  response_finished_ = true;
  client_.finish_response(keep_alive);
}

}  // namespace cachecar
