#include "admin/admin_server.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "http/error_page.h"
#include "http/parser.h"
#include "net/listener.h"
#include "uv/handle.h"

namespace cachecar {
namespace {

constexpr size_t kMaxHeaderBytes = 8 * 1024;
// A purge's JSON: ten thousand keys (cache/purge_order.h) fit.
constexpr size_t kMaxBodyBytes = 1024 * 1024;

struct AdminWrite {
  uv_write_t request{};
  std::string bytes;
};

std::string plain_response(int status, std::string_view content_type, std::string_view body,
                           bool keep_alive, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out += reason_phrase(status);
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nCache-Control: no-store\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  if (!head_only) {
    out += body;
  }
  return out;
}

}  // namespace

// One admin client. Self-owned: deleted by its last close callback.
class AdminConnection final : private RequestParser::Listener {
 public:
  static void accept(AdminServer& server, uv_stream_t* listener);
  void close();

  AdminConnection* prev = nullptr;
  AdminConnection* next = nullptr;

 private:
  explicit AdminConnection(AdminServer& server)
      : server_(server),
        parser_(*this, RequestParser::Limits{kMaxHeaderBytes, 50, kMaxBodyBytes}) {}
  ~AdminConnection() { server_.forget(this); }

  ParseStep on_request_head(RequestHead& head) override {
    head_ = std::move(head);
    body_.clear();
    return ParseStep::Continue;
  }
  ParseStep on_request_body(std::string_view chunk) override {
    body_ += chunk;
    return ParseStep::Continue;
  }
  ParseStep on_request_complete() override {
    respond();
    // An answer still to come: nothing after this request is read until it is sent.
    return awaiting_reply_ ? ParseStep::Pause : ParseStep::Continue;
  }

  void respond();
  void on_bytes(std::string_view bytes);
  void purge(bool keep_alive);
  void start_reading();
  void send(std::string bytes);
  // uv_timer_start, not uv_timer_again: the latter restarts only a repeating timer.
  void arm_idle_timer();

  AdminServer& server_;
  uv_tcp_t socket_{};
  uv_timer_t timer_{};
  RequestParser parser_;
  RequestHead head_;
  std::string body_;
  // A purge's answer is awaited: the bytes received meanwhile wait here, unparsed.
  bool awaiting_reply_ = false;
  bool paused_ = false;  // the parser stopped after that request
  std::string unparsed_;
  // Lets a purge's late answer find out whether its connection is still there.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  int open_handles_ = 0;
  bool closing_ = false;
  bool close_after_write_ = false;
};

void AdminConnection::accept(AdminServer& server, uv_stream_t* listener) {
  auto* connection = new AdminConnection(server);
  uv_check("uv_tcp_init", uv_tcp_init(server.loop(), &connection->socket_));
  uv_check("uv_timer_init", uv_timer_init(server.loop(), &connection->timer_));
  connection->socket_.data = connection;
  connection->timer_.data = connection;
  connection->open_handles_ = 2;
  server.adopt(connection);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&connection->socket_)) != 0) {
    connection->close();
    return;
  }
  connection->arm_idle_timer();
  connection->start_reading();
}

void AdminConnection::start_reading() {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&socket_),
      [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
        buf->base = new char[suggested];
        buf->len = suggested;
      },
      [](uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
        auto* self = owner_of<AdminConnection>(stream);
        if (nread > 0 && !self->closing_) {
          self->arm_idle_timer();
          self->on_bytes(std::string_view(buf->base, static_cast<size_t>(nread)));
        } else if (nread < 0) {
          self->close();
        }
        delete[] buf->base;
      });
}

void AdminConnection::on_bytes(std::string_view bytes) {
  if (awaiting_reply_) {
    unparsed_ += bytes;
    return;
  }
  const ParseResult result = parser_.execute(bytes);
  if (result.kind == ParseResult::Kind::Error) {
    close_after_write_ = true;
    send(error_response(result.status, result.reason, false));
  } else if (result.kind == ParseResult::Kind::Paused) {
    paused_ = true;
    unparsed_.assign(bytes.substr(result.consumed));
  }
}

void AdminConnection::purge(bool keep_alive) {
  awaiting_reply_ = true;
  // A purge may walk the keyspace for longer than the idle timeout; nothing more is read
  // (and buffered) until it answers.
  uv_timer_stop(&timer_);
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&socket_));
  std::weak_ptr<bool> alive = alive_;
  server_.hooks().purge(
      head_, body_, peer_address_text(&socket_),
      [this, alive, keep_alive](int status, std::string body, std::string extra_headers) {
        if (alive.expired() || closing_) {
          return;  // the asker left; the purge ran all the same
        }
        std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
        out += reason_phrase(status);
        out += "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n";
        out += extra_headers;
        out += "Content-Length: " + std::to_string(body.size());
        out += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
        out += body;
        send(std::move(out));
        awaiting_reply_ = false;
        if (closing_) {
          return;
        }
        arm_idle_timer();
        start_reading();
        if (!paused_) {
          return;  // answered within the request's own callback: parsing simply goes on
        }
        paused_ = false;
        parser_.resume();
        const std::string rest = std::move(unparsed_);
        unparsed_.clear();
        if (!rest.empty()) {
          on_bytes(rest);
        }
      });
}

void AdminConnection::arm_idle_timer() {
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { owner_of<AdminConnection>(t)->close(); },
      static_cast<uint64_t>(server_.idle_timeout().count()), 0);
}

void AdminConnection::respond() {
  const AdminServer::Hooks& hooks = server_.hooks();
  const bool head_only = head_.method == "HEAD";
  const bool keep_alive = head_.keep_alive;
  close_after_write_ = !keep_alive;
  const std::string_view path = head_.path();
  if (path == "/purge") {
    if (head_.method != "POST") {
      send(error_response(405, "purge with POST and a JSON body", keep_alive, "Allow: POST\r\n",
                          head_only));
    } else if (!hooks.purge) {
      send(error_response(404, "purge is not available", keep_alive, {}, head_only));
    } else {
      purge(keep_alive);
    }
  } else if (head_.method != "GET" && !head_only) {
    send(error_response(405, "admin endpoints answer GET and HEAD", keep_alive, {}, head_only));
  } else if (path == "/healthz") {
    const bool healthy = hooks.healthy();
    send(plain_response(healthy ? 200 : 503, "text/plain",
                        healthy ? "ok\n" : "a worker loop is stuck\n", keep_alive, head_only));
  } else if (path == "/readyz") {
    const bool ready = hooks.ready();
    send(plain_response(ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n",
                        keep_alive, head_only));
  } else if (path == "/metrics") {
    send(plain_response(200, "text/plain; version=0.0.4; charset=utf-8", hooks.metrics(),
                        keep_alive, head_only));
  } else {
    send(error_response(404, "not found: try /healthz, /readyz, /metrics or POST /purge",
                        keep_alive, {}, head_only));
  }
}

void AdminConnection::send(std::string bytes) {
  if (closing_) {
    return;
  }
  auto* write = new AdminWrite;
  write->bytes = std::move(bytes);
  write->request.data = this;
  uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned>(write->bytes.size()));
  const int rc = uv_write(&write->request, reinterpret_cast<uv_stream_t*>(&socket_), &buf, 1,
                          [](uv_write_t* request, int status) {
                            auto* done = reinterpret_cast<AdminWrite*>(request);
                            auto* self = owner_of<AdminConnection>(request);
                            delete done;
                            if (status != 0 || self->close_after_write_) {
                              self->close();
                            }
                          });
  if (rc != 0) {
    delete write;
    close();
  }
}

void AdminConnection::close() {
  if (closing_) {
    return;
  }
  closing_ = true;
  auto on_closed = [](uv_handle_t* handle) {
    auto* self = owner_of<AdminConnection>(handle);
    if (--self->open_handles_ == 0) {
      delete self;
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&socket_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
}

AdminServer::AdminServer(uv_loop_t* loop, Hooks hooks) : loop_(loop), hooks_(std::move(hooks)) {}

AdminServer::~AdminServer() { close(); }

std::optional<SocketAddress> AdminServer::listen(const HostPort& address, std::string& error) {
  auto resolved = resolve_blocking(address, error);
  if (!resolved) {
    return std::nullopt;
  }
  auto sockets = bind_listen_sockets(*resolved, 1, false, error);
  if (!sockets) {
    return std::nullopt;
  }
  listener_.reset(new uv_tcp_t);
  uv_check("uv_tcp_init", uv_tcp_init(loop_, listener_.get()));
  listener_->data = this;
  uv_check("uv_tcp_open", uv_tcp_open(listener_.get(), sockets->fds.front()));
  const int rc = uv_listen(reinterpret_cast<uv_stream_t*>(listener_.get()), 64,
                           [](uv_stream_t* server, int status) {
                             if (status == 0) {
                               AdminConnection::accept(*owner_of<AdminServer>(server), server);
                             }
                           });
  if (rc != 0) {
    error = std::string("listen: ") + uv_strerror(rc);
    listener_.reset();
    return std::nullopt;
  }
  return sockets->bound;
}

void AdminServer::close() {
  listener_.reset();
  for (AdminConnection* c = connections_; c != nullptr; c = c->next) {
    c->close();
  }
}

void AdminServer::adopt(AdminConnection* connection) {
  connection->next = connections_;
  if (connections_ != nullptr) {
    connections_->prev = connection;
  }
  connections_ = connection;
}

void AdminServer::forget(AdminConnection* connection) {
  if (connection->prev != nullptr) {
    connection->prev->next = connection->next;
  } else if (connections_ == connection) {
    connections_ = connection->next;
  }
  if (connection->next != nullptr) {
    connection->next->prev = connection->prev;
  }
}

}  // namespace cachecar
