#include "upstream/pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "upstream/upstream_connection.h"

namespace cachecar {

UpstreamPool::UpstreamPool(uv_loop_t* loop, const UpstreamUrl& url,
                           const UpstreamSettings& settings, std::optional<SocketAddress> address)
    : loop_(loop),
      url_(url),
      name_(url.address.to_string()),
      settings_(settings),
      address_(std::move(address)),
      resolver_(loop),
      read_buffer_(kReadBufferSize) {
  trim_timer_ = make_timer(loop_, this);
  if (!parse_ip_address(url_.address.host, url_.address.port)) {
    // A name can move (a Kubernetes Service, a failover); look it up again now and then,
    // asynchronously, and keep using the last good address meanwhile.
    refresh_timer_ = make_timer(loop_, this);
    uv_timer_start(
        refresh_timer_.get(),
        [](uv_timer_t* timer) { owner_of<UpstreamPool>(timer)->refresh_address(); },
        static_cast<uint64_t>(address_ ? kRefreshInterval.count() : 1000),
        static_cast<uint64_t>(kRefreshInterval.count()));
  }
}

UpstreamPool::~UpstreamPool() { shutdown(); }

void UpstreamPool::refresh_address() {
  if (resolver_.busy()) {
    return;
  }
  resolver_.resolve(url_.address, [this](std::optional<SocketAddress> address, std::string error) {
    if (address) {
      if (!address_ || address->to_string() != address_->to_string()) {
        spdlog::info("upstream {} resolved to {}", url_.address.host, address->to_string());
      }
      address_ = std::move(address);
    } else {
      spdlog::warn("upstream {}: cannot resolve: {}; keeping {}", url_.address.host, error,
                   address_ ? address_->to_string() : std::string("no address"));
    }
  });
}

UpstreamConnection* UpstreamPool::acquire(bool fresh) {
  if (!fresh && !idle_.empty()) {
    UpstreamConnection* connection = idle_.back();
    idle_.pop_back();
    ++stats_.connections_reused;
    return connection;
  }
  if (!address_) {
    return nullptr;
  }
  return UpstreamConnection::connect(*this, address_->get());
}

void UpstreamPool::shutdown() {
  shut_down_ = true;
  refresh_timer_.reset();
  trim_timer_.reset();
  trim_armed_ = false;
  // close() calls on_not_idle() via on_closed() later; copy first.
  const std::vector<UpstreamConnection*> idle = idle_;
  idle_.clear();
  for (UpstreamConnection* connection : idle) {
    connection->close();
  }
}

void UpstreamPool::on_idle(UpstreamConnection* connection) {
  if (shut_down_ || settings_.max_idle == 0) {
    connection->close();
    return;
  }
  idle_.push_back(connection);
  if (static_cast<int>(idle_.size()) > settings_.max_idle && !trim_armed_) {
    arm_trim(static_cast<uint64_t>(kSurplusLinger.count()));
  }
}

void UpstreamPool::arm_trim(uint64_t delay_ms) {
  trim_armed_ = true;
  uv_timer_start(
      trim_timer_.get(), [](uv_timer_t* timer) { owner_of<UpstreamPool>(timer)->trim_surplus(); },
      delay_ms, 0);
}

void UpstreamPool::trim_surplus() {
  trim_armed_ = false;
  const uint64_t now = uv_now(loop_);
  const auto linger = static_cast<uint64_t>(kSurplusLinger.count());
  while (static_cast<int>(idle_.size()) > settings_.max_idle) {
    UpstreamConnection* coldest = idle_.front();
    const uint64_t idle_for = now - coldest->idle_since_ms();
    if (idle_for < linger) {
      arm_trim(linger - idle_for);
      return;
    }
    idle_.erase(idle_.begin());
    coldest->close();
  }
}

void UpstreamPool::on_not_idle(UpstreamConnection* connection) {
  auto it = std::find(idle_.begin(), idle_.end(), connection);
  if (it != idle_.end()) {
    idle_.erase(it);
  }
}

void UpstreamPool::on_closed(UpstreamConnection* connection) {
  on_not_idle(connection);
  --open_;
}

uv_buf_t UpstreamPool::read_buffer() {
  return uv_buf_init(read_buffer_.data(), static_cast<unsigned>(read_buffer_.size()));
}

}  // namespace cachecar
