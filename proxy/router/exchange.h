#pragma once
// One request's asynchronous life: from its parsed head to the last byte of its response.
// Today: forward to the upstream and stream the response back. The cache lookup and the rate
// limit slot in before forward() (issues 3 and 4).
//
// Ownership: the ClientConnection owns its current Exchange and destroys it only at points
// where no Exchange method is on the stack (a write or read callback, a close callback).
// The exchange borrows an UpstreamConnection while one is attached; ~Exchange detaches it.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/message.h"
#include "server/client_session.h"
#include "server/worker_context.h"
#include "upstream/upstream_connection.h"

namespace cachecar {

class Exchange final : private UpstreamHandler {
 public:
  Exchange(WorkerContext& context, ClientSession& client, RequestHead head);
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void start();
  void on_request_body(std::string_view chunk);
  void on_request_complete();
  // The client's write queue fell below the low watermark.
  void on_client_drained();

  bool response_started() const { return response_started_; }

 private:
  // A request body of at most this many bytes is kept until the response starts, so the
  // request can be replayed on a fresh connection (the pooled one was closed under us).
  static constexpr size_t kReplayLimit = 64 * 1024;

  void forward(bool fresh_connection);
  void send_to_upstream(std::string bytes);
  void respond_error(int status, std::string_view message);
  void finish(bool keep_alive);

  void on_upstream_head(ResponseHead& head) override;
  void on_upstream_body(std::string_view chunk) override;
  void on_upstream_complete() override;
  void on_upstream_error(UpstreamError error, bool retryable) override;
  void on_upstream_drained() override;

  WorkerContext& context_;
  ClientSession& client_;
  const std::shared_ptr<const Config> config_;  // the configuration this request started with
  RequestHead head_;
  const uint64_t started_ns_;

  // Toward the upstream.
  UpstreamConnection* upstream_ = nullptr;  // borrowed while attached
  std::string upstream_head_;               // serialised once, sent again on a retry
  std::string replay_body_;                 // framed body bytes sent so far
  bool body_replayable_ = true;
  bool request_complete_ = false;
  bool retried_ = false;
  bool upstream_paused_ = false;
  uint64_t upstream_started_ns_ = 0;
  uint64_t upstream_head_ns_ = 0;

  // Toward the client.
  bool response_started_ = false;
  bool response_finished_ = false;
  bool client_chunked_ = false;
  bool keep_alive_ = true;
  int status_ = 0;
  uint64_t body_bytes_sent_ = 0;
};

}  // namespace cachecar
