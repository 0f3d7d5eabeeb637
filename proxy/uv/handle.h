#pragma once
// The libuv close protocol in one place (libuv docs, uv_close: "the memory can only be released
// in close_cb or after it has returned").
//
// Two ownership shapes exist in cachecar:
//  - handles owned by a longer-lived object (a worker's listener, a client's timer): UvPtr<T>,
//    whose deleter calls uv_close with a callback that frees only the handle. Use it only for
//    handles with no request in flight when the owner lets go (timers, signals, async, idle,
//    listeners), because nothing may call back into the owner after its destruction;
//  - self-owned objects (connections) hold their handles as members and delete themselves from
//    the last close callback; see ClientConnection.

#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

namespace cachecar {

template <typename T>
struct UvClose {
  void operator()(T* handle) const {
    if (handle == nullptr) {
      return;
    }
    auto* base = reinterpret_cast<uv_handle_t*>(handle);
    if (uv_is_closing(base)) {
      return;  // someone else started closing it and owns the free
    }
    uv_close(base, [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
  }
};

template <typename T>
using UvPtr = std::unique_ptr<T, UvClose<T>>;

// "Should never happen" failures (uv_loop_init, uv_timer_init...) stop the process with a
// message, as Envoy's RELEASE_ASSERT does: continuing with a half-initialised loop is worse.
[[noreturn]] inline void uv_fatal(const char* what, int status) {
  std::fprintf(stderr, "cachecar: fatal: %s: %s\n", what, uv_strerror(status));
  std::abort();
}

inline void uv_check(const char* what, int status) {
  if (status != 0) {
    uv_fatal(what, status);
  }
}

inline UvPtr<uv_timer_t> make_timer(uv_loop_t* loop, void* data) {
  auto* timer = new uv_timer_t;
  uv_check("uv_timer_init", uv_timer_init(loop, timer));
  timer->data = data;
  return UvPtr<uv_timer_t>(timer);
}

// Recovers the owner stored in a handle's or request's `data`.
template <typename Owner, typename Handle>
Owner* owner_of(Handle* handle) {
  return static_cast<Owner*>(handle->data);
}

}  // namespace cachecar
