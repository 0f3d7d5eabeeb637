#pragma once
// An asynchronous Redis client on a libuv loop: one TCP connection per worker, multiplexing the
// commands of every request. hiredis provides only the RESP reader; connecting, writing,
// timeouts and reconnection are ours, so nothing blocks the loop and every command is bounded.
//
// Contract:
//  - submit() sends a group of commands and reports all their replies in one callback. Groups
//    submitted during one loop iteration leave in one write (auto-pipelining): the output
//    buffer is flushed from a check handle, after the iteration's I/O callbacks have run.
//  - submit() refuses at once (returns nullptr) unless the connection is ready: while Redis is
//    down no request waits for it.
//  - Every call ends exactly once: with its replies, or with none when it failed (timeout,
//    disconnect). A timeout cannot cancel one command on a shared connection, so it drops the
//    connection (h2o's answer), fails everything pending, and reconnects with backoff.
//  - Scripts are loaded at connect (SCRIPT LOAD) and called with EVALSHA; a NOSCRIPT reply
//    (a restarted or failed-over Redis) is answered by sending the same call as EVAL, invisibly
//    to the caller.
//
// Ownership: the worker owns the client. Callbacks never delete the client; a waiter that goes
// away first must cancel() its call.

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "net/resolver.h"
#include "net/tls.h"
#include "redis/backoff.h"
#include "redis/command.h"
#include "redis/redis_client.h"
#include "redis/redis_locator.h"
#include "redis/reply.h"
#include "uv/handle.h"

namespace cachecar {

struct RedisSettings {
  RedisUrl url;
  // Where each connection attempt goes when not the URL's host (Sentinel). Shared: every
  // client of a worker asks the same sentinels.
  std::shared_ptr<RedisLocator> locator;
  // The peer is a sentinel: no AUTH, SELECT or scripts, only PING. Otherwise, with a locator,
  // the server must answer ROLE as the master, and a READONLY reply (it was demoted) sends
  // the client back to the locator.
  bool sentinel_peer = false;
  // With a locator: any server will do, a replica too (a Redis Cluster's nodes asked for the
  // slot map), so no ROLE is asked and READONLY moves nothing.
  bool any_role = false;
  // rediss://: the context to verify the server with, and the name to verify (the host
  // connected to unless redis.tls.server_name). Null: plain TCP.
  std::shared_ptr<const TlsContext> tls;
  std::string tls_peer_name;
  // What the connection is for, in log lines ("" for the worker's main connection).
  std::string role;
  // Connects are logged at debug level, not info: a connection beside the workers' (the admin
  // loop's purges), whose "connected" must not be taken for theirs. Losses still warn.
  bool quiet_connects = false;
  Duration command_timeout{100};
  Duration connect_timeout{1'000};
  BackoffPolicy backoff;
};

class RedisNode final : public RedisClient {
 public:
  struct Call;

  enum class State { Disconnected, Connecting, Handshake, Ready, Stopped };

  RedisNode(uv_loop_t* loop, RedisSettings settings);
  ~RedisNode();
  RedisNode(const RedisNode&) = delete;
  RedisNode& operator=(const RedisNode&) = delete;

  // Requires: before start(). Scripts are loaded on every (re)connect.
  void register_script(const RedisScript* script) override;
  // Adds a callback run each time the connection becomes ready (first connect and every
  // reconnect), after the state is Ready, so it may submit. Requires: before start().
  void on_ready(std::function<void()> callback) override {
    on_ready_.push_back(std::move(callback));
  }
  // With a locator: run when a connection is ready on another server than the last one was.
  void on_primary_moved(std::function<void(const std::string& why)> callback) override {
    on_primary_moved_.push_back(std::move(callback));
  }
  // This connection is the only one: `added` runs at once, `removed` never.
  void watch_nodes(std::function<void(RedisNode&)> added,
                   std::function<void(RedisNode&)> /*removed*/) override {
    added(*this);
  }
  // Adds a callback run each time a ready connection is lost, before its pending calls fail.
  // Redis forgets a connection's state with it (CLIENT TRACKING, subscriptions).
  void on_lost(std::function<void()> callback) override { on_lost_.push_back(std::move(callback)); }
  // Pub/Sub: receives every "message" push (["message", channel, payload]) instead of it
  // being taken for a reply. Only a subscribed connection gets them. Requires: before start().
  void on_message(std::function<void(const redisReply& message)> callback) {
    on_message_ = std::move(callback);
  }
  void start() override;
  // Fails pending calls, closes the connection and every handle; no reconnect after it.
  void stop() override;

  // Drops the connection (failing what is pending) and connects again at once, asking the
  // locator anew: the server it is on is no longer the one to use.
  void reconnect(std::string_view reason);

  bool ready() const override { return state_ == State::Ready; }
  // For calls submitted from now on (a configuration reload).
  void set_command_timeout(Duration timeout) override { settings_.command_timeout = timeout; }
  // For connection attempts started from now on; one in progress keeps the value it began with.
  void set_connect_timeout(Duration timeout) override { settings_.connect_timeout = timeout; }
  State state() const { return state_; }
  // The server of the current (or last) connection attempt: the URL's, or the locator's.
  const HostPort& server() const { return target_; }
  const RedisSettings& settings() const { return settings_; }
  RedisStats stats() const override {
    RedisStats stats = stats_;
    stats.servers = 1;
    stats.servers_ready = ready() ? 1 : 0;
    return stats;
  }

  // nullptr when not ready.
  RedisClient::Call* submit(std::vector<RedisCommand> commands, RedisWaiter& waiter,
                            uint64_t tag) override;
  void cancel(RedisClient::Call* call) override;
  // As submit(), for a caller that keeps the commands itself: they are encoded at once and not
  // kept, so a NOSCRIPT answer reaches the waiter instead of being answered with EVAL.
  RedisClient::Call* submit_borrowed(const std::vector<const RedisCommand*>& commands,
                                     RedisWaiter& waiter, uint64_t tag);

 private:
  struct Socket;
  struct Slot {
    Call* call;
    uint32_t index;
    bool eval_retry;  // already re-sent as EVAL after NOSCRIPT
  };
  class Handshake;

  void connect();
  void on_located(std::optional<HostPort> address, const std::string& error);
  void on_resolved(std::optional<SocketAddress> address, const std::string& error);
  bool expects_master() const {
    return settings_.locator != nullptr && !settings_.sentinel_peer && !settings_.any_role;
  }
  void on_connected(int status);
  void on_handshake_done(std::vector<RedisReplyPtr>& replies);
  void on_data(std::string_view bytes);
  void on_plaintext(std::string_view bytes);
  void continue_tls_handshake();
  void start_handshake();
  // Writes `bytes` (taken) to the socket: at once when nothing is queued, else after it.
  void write_to_socket(std::string& bytes);
  // `reason`, with the TLS alert the server sent before the connection failed, if any.
  std::string with_tls_alert(std::string reason);
  void dispatch(RedisReplyPtr reply);
  void complete(Call* call);
  void disconnect(std::string_view reason);
  void schedule_reconnect();
  void encode(const RedisCommand& command, bool as_eval, std::string& out);
  Call* enqueue(std::vector<RedisCommand> commands, RedisWaiter* waiter, uint64_t tag);
  Call* begin_call(size_t count, RedisWaiter* waiter, uint64_t tag);
  void recycle(Call* call);
  void add_command(Call* call, uint32_t index, const RedisCommand& command);
  void schedule_flush();
  void flush();
  void arm_deadline_timer();
  std::string label() const;
  std::string tls_peer_name() const;
  void on_deadline();

  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* request, int status);

  uv_loop_t* loop_;
  RedisSettings settings_;
  State state_ = State::Disconnected;
  std::vector<const RedisScript*> scripts_;
  std::vector<std::string> script_shas_;  // parallel to scripts_, filled at handshake
  std::vector<std::function<void()>> on_ready_;
  std::vector<std::function<void()>> on_lost_;
  std::vector<std::function<void(const std::string&)>> on_primary_moved_;
  HostPort last_ready_server_;  // with a locator: where the last ready connection was
  std::function<void(const redisReply&)> on_message_;

  AsyncResolver resolver_;
  HostPort target_;           // the server of the current (or last) connection attempt
  bool locating_ = false;     // the current attempt waits for the locator's answer
  bool demoted_ = false;      // a READONLY reply arrived: reconnect once it is dispatched
  Socket* socket_ = nullptr;  // the current connection attempt; closes itself
  std::unique_ptr<RespReader> reader_storage_;
  std::unique_ptr<Handshake> handshake_;

  std::deque<Slot> slots_;    // commands sent or queued, in reply order
  std::deque<Call*> calls_;   // oldest first; answered calls are recycled from the front
  static constexpr size_t kMaxPooledCalls = 256;
  std::vector<std::unique_ptr<Call>> free_calls_;  // done with, kept for reuse
  std::string out_;           // commands not yet written
  int writes_in_flight_ = 0;  // queued uv_writes on the current socket
  UvPtr<uv_check_t> flush_check_;
  UvPtr<uv_idle_t> flush_idle_;  // keeps the loop from blocking while a flush is due
  UvPtr<uv_timer_t> deadline_timer_;
  uint64_t timer_due_ms_ = 0;  // when deadline_timer_ fires, while it is active
  UvPtr<uv_timer_t> reconnect_timer_;
  uint32_t attempt_ = 0;
  // connect_timeout as it was when the current attempt began, and when that attempt's connect
  // plus handshake must be done: one budget for both, unchanged by a reload mid-attempt.
  Duration attempt_connect_timeout_{0};
  uint64_t attempt_deadline_ms_ = 0;
  bool logged_down_ = false;
  std::mt19937 random_;
  std::vector<char> read_buffer_;
  std::string tls_plaintext_;   // decrypted bytes of one read, reused
  std::string tls_ciphertext_;  // encrypted bytes to write, reused
  RedisStats stats_;
};

}  // namespace cachecar
