#include "redis/redis_node.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>

namespace cachecar {

struct RedisNode::Call final : RedisClient::Call {
  RedisWaiter* waiter = nullptr;  // null once cancelled or answered
  uint64_t tag = 0;
  std::vector<RedisCommand> commands;  // kept only when a NOSCRIPT re-send may need them
  std::vector<RedisReplyPtr> replies;
  uint32_t remaining = 0;
  uint64_t deadline_ms = 0;
  bool done = false;
};

// One connection attempt's socket. It outlives the client's interest in it: the client drops
// it by clearing `owner`, and the close callback frees it.
struct RedisNode::Socket {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  RedisNode* owner = nullptr;
  std::unique_ptr<TlsSession> tls;  // rediss:// only

  void close() {
    owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp),
             [](uv_handle_t* handle) { delete static_cast<Socket*>(handle->data); });
  }
};

// Receives the replies of the commands sent right after connecting.
class RedisNode::Handshake final : public RedisWaiter {
 public:
  explicit Handshake(RedisNode& client) : client_(client) {}
  void on_redis_done(uint64_t, std::vector<RedisReplyPtr>& replies) override {
    client_.on_handshake_done(replies);
  }

 private:
  RedisNode& client_;
};

namespace {

struct RedisWrite {
  uv_write_t request{};
  std::string bytes;
};

constexpr size_t kReadBufferSize = 64 * 1024;

}  // namespace

RedisNode::RedisNode(uv_loop_t* loop, RedisSettings settings)
    : loop_(loop),
      settings_(std::move(settings)),
      resolver_(loop),
      handshake_(std::make_unique<Handshake>(*this)),
      random_(std::random_device{}()),
      read_buffer_(kReadBufferSize) {
  flush_check_.reset(new uv_check_t);
  uv_check("uv_check_init", uv_check_init(loop_, flush_check_.get()));
  flush_check_->data = this;
  flush_idle_.reset(new uv_idle_t);
  uv_check("uv_idle_init", uv_idle_init(loop_, flush_idle_.get()));
  flush_idle_->data = this;
  deadline_timer_ = make_timer(loop_, this);
  reconnect_timer_ = make_timer(loop_, this);
}

RedisNode::~RedisNode() { stop(); }

void RedisNode::register_script(const RedisScript* script) {
  scripts_.push_back(script);
  script_shas_.emplace_back();
}

void RedisNode::start() {
  if (settings_.locator) {
    settings_.locator->watch(this, [this] { reconnect("the sentinels named a new master"); });
  }
  connect();
}

void RedisNode::reconnect(std::string_view reason) {
  if (state_ == State::Stopped) {
    return;
  }
  if (state_ != State::Disconnected) {
    disconnect(reason);
  }
  attempt_ = 0;
  uv_timer_stop(reconnect_timer_.get());
  connect();
}

void RedisNode::stop() {
  if (state_ == State::Stopped) {
    return;
  }
  state_ = State::Stopped;
  if (settings_.locator) {
    settings_.locator->forget(this);
  }
  disconnect("stopping");
  flush_check_.reset();
  flush_idle_.reset();
  deadline_timer_.reset();
  reconnect_timer_.reset();
}

// ---------------------------------------------------------------------------------------------
// Connecting

void RedisNode::connect() {
  if (state_ == State::Stopped) {
    return;
  }
  state_ = State::Connecting;
  attempt_connect_timeout_ = settings_.connect_timeout;
  const auto timeout_ms = static_cast<uint64_t>(attempt_connect_timeout_.count());
  attempt_deadline_ms_ = uv_now(loop_) + timeout_ms;
  timer_due_ms_ = attempt_deadline_ms_;
  uv_timer_start(
      deadline_timer_.get(), [](uv_timer_t* t) { owner_of<RedisNode>(t)->on_deadline(); },
      timeout_ms, 0);
  if (!settings_.locator) {
    on_located(settings_.url.address, "");
    return;
  }
  locating_ = true;
  settings_.locator->locate(this,
                            [this](std::optional<HostPort> address, const std::string& error) {
                              on_located(std::move(address), error);
                            });
}

void RedisNode::on_located(std::optional<HostPort> address, const std::string& error) {
  locating_ = false;
  if (state_ != State::Connecting) {
    return;
  }
  if (!address) {
    disconnect(error);
    return;
  }
  target_ = std::move(*address);
  resolver_.resolve(target_,
                    [this](std::optional<SocketAddress> resolved, const std::string& reason) {
                      on_resolved(std::move(resolved), reason);
                    });
}

void RedisNode::on_resolved(std::optional<SocketAddress> address, const std::string& error) {
  if (state_ != State::Connecting) {
    return;
  }
  if (!address) {
    disconnect("cannot resolve " + target_.host + ": " + error);
    return;
  }
  socket_ = new Socket;
  uv_check("uv_tcp_init", uv_tcp_init(loop_, &socket_->tcp));
  socket_->tcp.data = socket_;
  socket_->connect.data = socket_;
  socket_->owner = this;
  const int rc = uv_tcp_connect(&socket_->connect, &socket_->tcp, address->get(),
                                [](uv_connect_t* request, int status) {
                                  auto* socket = static_cast<Socket*>(request->data);
                                  if (socket->owner != nullptr) {
                                    socket->owner->on_connected(status);
                                  }
                                });
  if (rc != 0) {
    disconnect(std::string("connect: ") + uv_strerror(rc));
  }
}

void RedisNode::on_connected(int status) {
  if (status != 0) {
    disconnect(std::string("connect: ") + uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&socket_->tcp, 1);
  reader_storage_ = std::make_unique<RespReader>();
  uv_read_start(reinterpret_cast<uv_stream_t*>(&socket_->tcp), on_alloc, on_read);
  if (settings_.tls) {
    // Still Connecting: the connect deadline keeps running through the TLS handshake.
    socket_->tls = std::make_unique<TlsSession>(*settings_.tls, tls_peer_name());
    continue_tls_handshake();
    return;
  }
  start_handshake();
}

void RedisNode::continue_tls_handshake() {
  tls_ciphertext_.clear();
  const TlsSession::Progress progress = socket_->tls->handshake(tls_ciphertext_);
  if (!tls_ciphertext_.empty()) {
    write_to_socket(tls_ciphertext_);
    if (socket_ == nullptr) {
      return;  // the write failed and disconnected
    }
  }
  switch (progress) {
    case TlsSession::Progress::NeedMore:
      return;
    case TlsSession::Progress::Failed:
      disconnect("TLS handshake with " + tls_peer_name() + " failed: " + socket_->tls->error());
      return;
    case TlsSession::Progress::Done:
      start_handshake();
      return;
  }
}

void RedisNode::start_handshake() {
  state_ = State::Handshake;
  std::vector<RedisCommand> commands;
  const RedisUrl& url = settings_.url;
  if (settings_.sentinel_peer) {
    // Sentinels keep no data, scripts or databases; their AUTH is not the master's.
  } else if (!url.password.empty()) {
    if (url.username.empty()) {
      commands.push_back({{"AUTH", url.password}});
    } else {
      commands.push_back({{"AUTH", url.username, url.password}});
    }
  }
  if (url.database != 0 && !settings_.sentinel_peer) {
    commands.push_back({{"SELECT", std::to_string(url.database)}});
  }
  for (const RedisScript* script : scripts_) {
    commands.push_back({{"SCRIPT", "LOAD", script->source}});
  }
  if (expects_master()) {
    // What the sentinels said may be out of date already (a failover under way).
    commands.push_back({{"ROLE"}});
  }
  // Always last: an answered PING proves the server is serving, not just accepting (a
  // SIGSTOPped Redis still completes the TCP handshake).
  commands.push_back({{"PING"}});
  uv_timer_stop(deadline_timer_.get());
  Call* call = enqueue(std::move(commands), handshake_.get(), 0);
  call->deadline_ms = attempt_deadline_ms_;
  arm_deadline_timer();
}

void RedisNode::on_handshake_done(std::vector<RedisReplyPtr>& replies) {
  if (replies.empty()) {
    return;  // the connection failed; disconnect() reported it
  }
  const size_t role_replies = expects_master() ? 1 : 0;
  size_t script_index = 0;
  const size_t first_script = replies.size() - 1 - role_replies - scripts_.size();
  for (size_t i = 0; i < replies.size(); ++i) {
    const redisReply* reply = replies[i].get();
    if (is_error(reply)) {
      disconnect("handshake refused: " + std::string(reply_text(reply)));
      return;
    }
    if (i >= first_script && script_index < scripts_.size()) {
      script_shas_[script_index++] = std::string(reply_text(reply));
    }
  }
  if (role_replies != 0) {
    const redisReply* role = replies[replies.size() - 2].get();
    const bool master = role->type == REDIS_REPLY_ARRAY && role->elements > 0 &&
                        reply_text(role->element[0]) == "master";
    if (!master) {
      const std::string_view answer = role->type == REDIS_REPLY_ARRAY && role->elements > 0
                                          ? reply_text(role->element[0])
                                          : reply_text(role);
      disconnect(target_.to_string() + " is not the master (ROLE: " + std::string(answer) + ")");
      return;
    }
  }
  state_ = State::Ready;
  attempt_ = 0;
  if (logged_down_) {
    spdlog::log(settings_.quiet_connects ? spdlog::level::debug : spdlog::level::info,
                "redis {}: connected again; caching resumes", label());
  } else {
    spdlog::log(settings_.quiet_connects ? spdlog::level::debug : spdlog::level::info,
                "redis {}: connected", label());
  }
  logged_down_ = false;
  if (expects_master()) {
    // Replication is asynchronous: a replica promoted may lack writes the old master took.
    if (!last_ready_server_.host.empty() && target_.to_string() != last_ready_server_.to_string()) {
      const std::string why = "the Redis master moved from " + last_ready_server_.to_string() +
                              " to " + target_.to_string();
      for (const auto& callback : on_primary_moved_) {
        callback(why);
      }
    }
    last_ready_server_ = target_;
  }
  for (const auto& callback : on_ready_) {
    callback();
  }
}

void RedisNode::disconnect(std::string_view reason) {
  const bool was_ready = state_ == State::Ready;
  if (state_ != State::Stopped) {
    state_ = State::Disconnected;
  }
  if (was_ready) {
    ++stats_.disconnects;
    for (const auto& callback : on_lost_) {
      callback();
    }
  }
  if (socket_ != nullptr) {
    socket_->close();
    socket_ = nullptr;
  }
  writes_in_flight_ = 0;  // their callbacks find the socket detached
  demoted_ = false;
  reader_storage_.reset();
  out_.clear();
  slots_.clear();
  if (deadline_timer_) {
    uv_timer_stop(deadline_timer_.get());
  }
  if (reason != "stopping") {
    if (was_ready || !logged_down_) {
      spdlog::warn("redis {}: unavailable ({}); requests go on without it", label(), reason);
      logged_down_ = true;
    } else {
      spdlog::debug("redis {}: still unavailable ({})", label(), reason);
    }
  }
  // Set the state first (above), then fail the calls: a waiter may submit again from its
  // callback, and must be refused rather than queued on a dead connection.
  std::deque<Call*> calls;
  calls.swap(calls_);
  for (Call* call : calls) {
    if (!call->done && call->waiter != nullptr) {
      RedisWaiter* waiter = call->waiter;
      call->waiter = nullptr;
      std::vector<RedisReplyPtr> none;
      waiter->on_redis_done(call->tag, none);
    }
    recycle(call);
  }
  schedule_reconnect();
}

void RedisNode::schedule_reconnect() {
  if (state_ == State::Stopped || !reconnect_timer_) {
    return;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto delay = backoff_delay(settings_.backoff, attempt_++, unit(random_));
  uv_timer_start(
      reconnect_timer_.get(), [](uv_timer_t* t) { owner_of<RedisNode>(t)->connect(); },
      static_cast<uint64_t>(delay.count()), 0);
}

// ---------------------------------------------------------------------------------------------
// Commands

RedisClient::Call* RedisNode::submit(std::vector<RedisCommand> commands, RedisWaiter& waiter,
                                     uint64_t tag) {
  if (state_ != State::Ready || commands.empty()) {
    return nullptr;
  }
  Call* call = enqueue(std::move(commands), &waiter, tag);
  arm_deadline_timer();
  return call;
}

void RedisNode::cancel(RedisClient::Call* call) {
  if (call != nullptr) {
    static_cast<Call*>(call)->waiter = nullptr;
  }
}

RedisNode::Call* RedisNode::begin_call(size_t count, RedisWaiter* waiter, uint64_t tag) {
  Call* call = nullptr;
  if (free_calls_.empty()) {
    call = new Call;
  } else {
    call = free_calls_.back().release();
    free_calls_.pop_back();
  }
  call->waiter = waiter;
  call->tag = tag;
  call->remaining = static_cast<uint32_t>(count);
  call->replies.resize(count);
  call->deadline_ms = uv_now(loop_) + static_cast<uint64_t>(settings_.command_timeout.count());
  stats_.commands += count;
  calls_.push_back(call);
  schedule_flush();
  return call;
}

void RedisNode::recycle(Call* call) {
  // Kept with its replies' capacity for the next call: one allocation less per call.
  call->waiter = nullptr;
  call->commands.clear();
  call->replies.clear();
  call->done = false;
  if (free_calls_.size() < kMaxPooledCalls) {
    free_calls_.emplace_back(call);
  } else {
    delete call;
  }
}

void RedisNode::add_command(Call* call, uint32_t index, const RedisCommand& command) {
  encode(command, false, out_);
  slots_.push_back({call, index, false});
}

RedisNode::Call* RedisNode::enqueue(std::vector<RedisCommand> commands, RedisWaiter* waiter,
                                    uint64_t tag) {
  Call* call = begin_call(commands.size(), waiter, tag);
  bool has_script = false;
  for (uint32_t i = 0; i < commands.size(); ++i) {
    add_command(call, i, commands[i]);
    has_script = has_script || commands[i].script != nullptr;
  }
  if (has_script) {
    call->commands = std::move(commands);
  }
  return call;
}

RedisClient::Call* RedisNode::submit_borrowed(const std::vector<const RedisCommand*>& commands,
                                              RedisWaiter& waiter, uint64_t tag) {
  if (state_ != State::Ready || commands.empty()) {
    return nullptr;
  }
  Call* call = begin_call(commands.size(), &waiter, tag);
  for (uint32_t i = 0; i < commands.size(); ++i) {
    add_command(call, i, *commands[i]);
  }
  arm_deadline_timer();
  return call;
}

void RedisNode::encode(const RedisCommand& command, bool as_eval, std::string& out) {
  if (command.script == nullptr) {
    append_array_header(command.args.size(), out);
    for (const std::string& arg : command.args) {
      append_bulk(arg, out);
    }
    return;
  }
  const auto found = std::find(scripts_.begin(), scripts_.end(), command.script);
  const size_t index = static_cast<size_t>(found - scripts_.begin());
  const bool have_sha = found != scripts_.end() && !script_shas_[index].empty();
  append_array_header(command.args.size() + 3, out);
  if (as_eval || !have_sha) {
    append_bulk("EVAL", out);
    append_bulk(command.script->source, out);
  } else {
    append_bulk("EVALSHA", out);
    append_bulk(script_shas_[index], out);
  }
  append_bulk(std::to_string(command.num_keys), out);
  for (const std::string& arg : command.args) {
    append_bulk(arg, out);
  }
}

void RedisNode::schedule_flush() {
  if (!flush_check_ || uv_is_active(reinterpret_cast<uv_handle_t*>(flush_check_.get()))) {
    return;
  }
  uv_check_start(flush_check_.get(), [](uv_check_t* c) { owner_of<RedisNode>(c)->flush(); });
  // An active idle handle makes the loop poll without blocking, so commands queued from a
  // timer or idle callback still leave in this iteration's check phase.
  uv_idle_start(flush_idle_.get(), [](uv_idle_t*) {});
}

void RedisNode::flush() {
  uv_check_stop(flush_check_.get());
  uv_idle_stop(flush_idle_.get());
  if (out_.empty() || socket_ == nullptr) {
    return;
  }
  ++stats_.writes;
  if (socket_->tls == nullptr) {
    write_to_socket(out_);
    return;
  }
  if (!socket_->tls->established()) {
    return;  // nothing is queued before the handshake; kept for after it, should it be
  }
  tls_ciphertext_.clear();
  const bool sealed = socket_->tls->send(out_, tls_ciphertext_);
  out_.clear();
  if (!sealed) {
    disconnect("TLS: " + socket_->tls->error());
    return;
  }
  write_to_socket(tls_ciphertext_);
}

void RedisNode::write_to_socket(std::string& bytes) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&socket_->tcp);
  if (writes_in_flight_ == 0) {
    // Written at once in the common case: no request, no callback, no epoll_ctl.
    uv_buf_t direct = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    const int written = uv_try_write(stream, &direct, 1);
    if (written == static_cast<int>(bytes.size())) {
      bytes.clear();
      return;
    }
    if (written > 0) {
      bytes.erase(0, static_cast<size_t>(written));
    } else if (written != UV_EAGAIN) {
      disconnect(with_tls_alert(std::string("write: ") + uv_strerror(written)));
      return;
    }
  }
  auto* write = new RedisWrite;
  write->bytes.swap(bytes);
  write->request.data = socket_;
  uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
  ++writes_in_flight_;
  const int rc = uv_write(&write->request, stream, &buf, 1, on_write);
  if (rc != 0) {
    delete write;
    disconnect(with_tls_alert(std::string("write: ") + uv_strerror(rc)));
  }
}

void RedisNode::on_write(uv_write_t* request, int status) {
  auto* write = reinterpret_cast<RedisWrite*>(request);
  auto* socket = static_cast<Socket*>(request->data);
  delete write;
  RedisNode* client = socket->owner;
  if (client == nullptr) {
    return;
  }
  --client->writes_in_flight_;
  if (status != 0) {
    client->disconnect(client->with_tls_alert(std::string("write: ") + uv_strerror(status)));
  }
}

// ---------------------------------------------------------------------------------------------
// Replies

void RedisNode::on_alloc(uv_handle_t* handle, size_t /*suggested*/, uv_buf_t* buf) {
  auto* socket = static_cast<Socket*>(handle->data);
  RedisNode* client = socket->owner;
  *buf =
      uv_buf_init(client->read_buffer_.data(), static_cast<unsigned>(client->read_buffer_.size()));
}

void RedisNode::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* socket = static_cast<Socket*>(stream->data);
  RedisNode* client = socket->owner;
  if (client == nullptr) {
    return;
  }
  if (nread > 0) {
    client->on_data(std::string_view(buf->base, static_cast<size_t>(nread)));
  } else if (nread < 0) {
    client->disconnect(client->with_tls_alert(
        nread == UV_EOF ? std::string("connection closed by server")
                        : std::string("read: ") + uv_strerror(static_cast<int>(nread))));
  }
}

void RedisNode::on_data(std::string_view bytes) {
  TlsSession* tls = socket_->tls.get();
  if (tls == nullptr) {
    on_plaintext(bytes);
    return;
  }
  tls_plaintext_.clear();
  tls_ciphertext_.clear();
  const bool intact = tls->receive(bytes, tls_plaintext_, tls_ciphertext_);
  if (!tls_ciphertext_.empty()) {
    write_to_socket(tls_ciphertext_);  // a TLS 1.3 key update's answer, an alert
    if (socket_ == nullptr) {
      return;
    }
  }
  if (!intact) {
    disconnect("TLS: " + tls->error());
    return;
  }
  if (!tls->established()) {
    continue_tls_handshake();
    return;
  }
  if (!tls_plaintext_.empty()) {
    on_plaintext(tls_plaintext_);  // the reader copies it before any waiter runs
  }
}

std::string RedisNode::with_tls_alert(std::string reason) {
  if (socket_ == nullptr || socket_->tls == nullptr) {
    return reason;
  }
  // A TLS server that refuses us sends an alert and resets the connection, often before we
  // read it; the reset then hides the reason. What the kernel still holds tells it.
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&socket_->tcp), &fd) != 0) {
    return reason;
  }
  std::array<char, 4096> buffer;
  const ssize_t received = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
  if (received <= 0) {
    return reason;
  }
  std::string plaintext;
  std::string ciphertext;
  TlsSession& tls = *socket_->tls;
  const std::string_view bytes(buffer.data(), static_cast<size_t>(received));
  const bool intact =
      tls.receive(bytes, plaintext, ciphertext) &&
      (tls.established() || tls.handshake(ciphertext) != TlsSession::Progress::Failed);
  return intact ? reason : reason + " after TLS: " + tls.error();
}

void RedisNode::on_plaintext(std::string_view bytes) {
  RespReader* reader = reader_storage_.get();
  if (!reader->feed(bytes)) {
    disconnect("protocol error: " + reader->error());
    return;
  }
  // A waiter may disconnect (or a handshake fail) mid-loop; stop when this reader is gone.
  while (reader_storage_.get() == reader) {
    auto reply = reader->next();
    if (!reply) {
      disconnect("protocol error: " + reader->error());
      return;
    }
    if (*reply == nullptr) {
      return;
    }
    dispatch(std::move(*reply));
  }
}

namespace {

bool is_message_push(const redisReply* reply) {
  return reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
         reply->element[0]->type == REDIS_REPLY_STRING &&
         reply_text(reply->element[0]) == "message";
}

}  // namespace

void RedisNode::dispatch(RedisReplyPtr reply) {
  // No reply to a command is ever an array opening with "message": a subscribed connection's
  // PING answers ["pong", ""], SUBSCRIBE ["subscribe", ...].
  if (on_message_ && is_message_push(reply.get())) {
    on_message_(*reply);
    return;
  }
  if (slots_.empty()) {
    disconnect("reply without a command");
    return;
  }
  const Slot slot = slots_.front();
  slots_.pop_front();
  Call* call = slot.call;
  const RedisCommand* command =
      slot.index < call->commands.size() ? &call->commands[slot.index] : nullptr;
  if (command != nullptr && command->script != nullptr && !slot.eval_retry &&
      error_is(reply.get(), "NOSCRIPT")) {
    // The server lost its script cache (restart, failover, SCRIPT FLUSH). EVAL puts the
    // script back in that cache, so later EVALSHAs succeed again.
    spdlog::info("redis: script {} not loaded on the server; sending it again",
                 command->script->name);
    encode(*command, true, out_);
    slots_.push_back({call, slot.index, true});
    schedule_flush();
    return;
  }
  if (is_error(reply.get())) {
    ++stats_.errors;
    // A master demoted under us answers writes with READONLY until we move.
    demoted_ = demoted_ || (expects_master() && error_is(reply.get(), "READONLY"));
  }
  call->replies[slot.index] = std::move(reply);
  if (--call->remaining == 0) {
    complete(call);
  }
  if (demoted_ && state_ == State::Ready) {
    demoted_ = false;
    reconnect(target_.to_string() + " is a replica now (READONLY)");
  }
}

void RedisNode::complete(Call* call) {
  call->done = true;
  if (call->waiter != nullptr) {
    RedisWaiter* waiter = call->waiter;
    call->waiter = nullptr;
    waiter->on_redis_done(call->tag, call->replies);
  }
  // `call` may be gone now (a waiter's disconnect frees every call); only calls_ is trusted.
  while (!calls_.empty() && calls_.front()->done) {
    recycle(calls_.front());
    calls_.pop_front();
  }
}

std::string RedisNode::tls_peer_name() const {
  return settings_.tls_peer_name.empty() ? target_.host : settings_.tls_peer_name;
}

std::string RedisNode::label() const {
  std::string text = settings_.url.to_redacted_string();
  if (settings_.locator && !target_.host.empty()) {
    text += " at " + target_.to_string();
  }
  if (!settings_.role.empty()) {
    text += " (" + settings_.role + ")";
  }
  return text;
}

void RedisNode::arm_deadline_timer() {
  if (!deadline_timer_ || calls_.empty()) {
    return;
  }
  const uint64_t now = uv_now(loop_);
  const uint64_t deadline = calls_.front()->deadline_ms;
  // Armed already for this deadline or an earlier one: the timer re-arms itself when it fires.
  // A later one (the handshake's connect_timeout) must not delay a command's timeout.
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(deadline_timer_.get())) &&
      timer_due_ms_ <= deadline) {
    return;
  }
  timer_due_ms_ = deadline;
  uv_timer_start(
      deadline_timer_.get(), [](uv_timer_t* t) { owner_of<RedisNode>(t)->on_deadline(); },
      deadline > now ? deadline - now : 0, 0);
}

void RedisNode::on_deadline() {
  if (state_ == State::Connecting) {
    const bool in_tls = socket_ != nullptr && socket_->tls != nullptr;
    const std::string within = " (" + format_duration(attempt_connect_timeout_) + ")";
    if (locating_) {
      locating_ = false;
      disconnect("no sentinel named the master in time" + within);
    } else {
      disconnect(std::string(in_tls ? "TLS handshake" : "connect") + " timed out" + within);
    }
    return;
  }
  while (!calls_.empty() && calls_.front()->done) {
    recycle(calls_.front());
    calls_.pop_front();
  }
  if (calls_.empty()) {
    return;
  }
  const uint64_t now = uv_now(loop_);
  if (now >= calls_.front()->deadline_ms) {
    ++stats_.timeouts;
    disconnect(state_ == State::Handshake ? "no answer within connect_timeout (" +
                                                format_duration(attempt_connect_timeout_) + ")"
                                          : "no reply within command_timeout (" +
                                                format_duration(settings_.command_timeout) + ")");
    return;
  }
  arm_deadline_timer();
}

}  // namespace cachecar
