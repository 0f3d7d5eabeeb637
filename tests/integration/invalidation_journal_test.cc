// A write during a Redis fault is never followed by a stale read (issue 13). Each fault kind
// meets the write's invalidation: Redis hung (SIGSTOP), paused (CLIENT PAUSE), busy (DEBUG
// SLEEP), 500 ms away, resetting connections, refusing them, out of memory under noeviction,
// and refusing the scripts while connected (an ACL change: error replies on a live
// connection, which OOM no longer gives, since the invalidation runs under OOM). The network faults are a FaultProxy between cachecar and a real redis-server.
// Another client reads the same key throughout; no read that starts after the write's answer
// may see the old value, during the fault or after it, and caching must come back by itself.

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "catalog.h"
#include "harness.h"
#include "support/fault_proxy.h"

namespace cachecar::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kRoutes =
    "routes:\n"
    "  - path: /products/{id}\n"
    "    key: product:{id}\n"
    "    ttl: 300s\n"
    "  - path: /bare/{id}\n"
    "    key: bare:{id}\n"
    "    ttl: 300s\n"
    "    format: body\n";

struct Read {
  Clock::time_point started;
  int status = 0;
  std::string body;
  std::string cache;
};

// GETs one path over a keep-alive connection until stopped, recording every answer.
class Reader {
 public:
  Reader(int port, std::string path)
      : runner_(std::async(std::launch::async, [this, port, path] { run(port, path); })) {}
  ~Reader() { stop(); }

  std::vector<Read> stop() {
    stop_ = true;
    if (runner_.valid()) {
      runner_.get();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    return reads_;
  }

 private:
  void run(int port, const std::string& path) {
    std::optional<HttpConnection> client;
    while (!stop_) {
      Read read;
      read.started = Clock::now();
      try {
        if (!client) {
          client.emplace(port);
        }
        HttpResponse response = client->request("GET", path);
        read.status = response.status;
        read.body = response.body;
        read.cache = response.header("X-Cache").value_or("");
      } catch (const std::exception& e) {
        read.body = e.what();
        client.reset();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        reads_.push_back(std::move(read));
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Read> reads_;
  std::future<void> runner_;
};

// Every read that started after `after` saw `value`, and every read was answered 200.
void check_no_stale_read(const std::vector<Read>& reads, Clock::time_point after,
                         const std::string& value) {
  int after_count = 0;
  for (const Read& read : reads) {
    CHECK_MESSAGE(read.status == 200, "a read failed: ", read.body);
    if (read.started > after) {
      ++after_count;
      CHECK_MESSAGE(read.body == value, "stale read after the write: ", read.body,
                    " (X-Cache: ", read.cache, ")");
    }
  }
  CHECK(after_count > 10);  // the reader ran through the fault and the recovery
}

HttpResponse get(int port, const std::string& path) { return http_request(port, "GET", path); }

// A fill is fire and forget: it lands in Redis shortly after the miss is answered.
bool wait_for_key(RedisServer& redis, const std::string& key) {
  const auto deadline = Clock::now() + 3s;
  while (!redis.get(key).has_value()) {
    if (Clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// GETs until a HIT (caching is back), checking every answer; false after 10 s.
bool wait_for_hit(int port, const std::string& path, const std::string& value) {
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    HttpResponse response = get(port, path);
    CHECK(response.body == value);
    if (response.header("X-Cache") == "HIT") {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// A sample of cachecar's /metrics ("name value"), or -1 when absent.
double metric(const Cachecar& cachecar, const std::string& name) {
  const std::string text = http_request(cachecar.admin_port(), "GET", "/metrics").body;
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

// Waits out the heartbeat that copies a worker's counters (at most a second old).
bool wait_for_metric(const Cachecar& cachecar, const std::string& name,
                     const std::function<bool(double)>& good) {
  const auto deadline = Clock::now() + 4s;
  while (Clock::now() < deadline) {
    if (good(metric(cachecar, name))) {
      return true;
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

enum class FaultKind {
  Sigstop,
  ClientPause,
  DebugSleep,
  Latency,
  Reset,
  Refused,
  OutOfMemory,
  ScriptsRefused,
};

const char* name_of(FaultKind kind) {
  switch (kind) {
    case FaultKind::Sigstop:
      return "SIGSTOP";
    case FaultKind::ClientPause:
      return "CLIENT PAUSE";
    case FaultKind::DebugSleep:
      return "DEBUG SLEEP";
    case FaultKind::Latency:
      return "500 ms latency";
    case FaultKind::Reset:
      return "connections reset";
    case FaultKind::Refused:
      return "port refused";
    case FaultKind::OutOfMemory:
      return "OOM under noeviction";
    case FaultKind::ScriptsRefused:
      return "scripts refused";
  }
  return "?";
}

// Redis and the network to it, with one fault that can be started and ended. inject() may run
// on an upstream thread (Catalog::on_next_write), recover() on the test's.
struct FaultyRedis {
  RedisServer redis{{"--enable-debug-command", "yes"}};
  FaultProxy proxy{redis.port()};
  std::mutex mutex;
  std::future<void> sleeper;    // DEBUG SLEEP blocks its caller; guarded by mutex
  Clock::time_point pause_ends;  // guarded by mutex

  void inject(FaultKind kind) {
    std::lock_guard<std::mutex> lock(mutex);
    switch (kind) {
      case FaultKind::Sigstop:
        redis.pause();
        break;
      case FaultKind::ClientPause:
        // Bounded: CLIENT UNPAUSE would itself wait behind the pause.
        redis.command({"CLIENT", "PAUSE", "1200", "ALL"});
        pause_ends = Clock::now() + 1200ms;
        break;
      case FaultKind::DebugSleep: {
        const int port = redis.port();
        sleeper = std::async(std::launch::async, [port] {
          const UniqueFd fd = connect_loopback(port, 2s);
          send_all(fd.get(), "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$3\r\n1.2\r\n");
          set_io_timeout(fd.get(), 5s);
          char reply[16];
          [[maybe_unused]] const ssize_t n = ::recv(fd.get(), reply, sizeof(reply), 0);
        });
        std::this_thread::sleep_for(50ms);  // the sleep has begun
        break;
      }
      case FaultKind::Latency:
        proxy.set_fault(FaultProxy::Fault::Delay, 500ms);
        break;
      case FaultKind::Reset:
        proxy.set_fault(FaultProxy::Fault::Reset);
        break;
      case FaultKind::Refused:
        proxy.set_fault(FaultProxy::Fault::Refuse);
        break;
      case FaultKind::OutOfMemory:
        redis.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
        redis.command({"CONFIG", "SET", "maxmemory", "1"});
        break;
      case FaultKind::ScriptsRefused:
        redis.command({"ACL", "SETUSER", "default", "-@scripting"});
        break;
    }
  }

  void recover(FaultKind kind) {
    std::lock_guard<std::mutex> lock(mutex);
    switch (kind) {
      case FaultKind::Sigstop:
        redis.resume();
        break;
      case FaultKind::ClientPause:
        std::this_thread::sleep_until(pause_ends + 50ms);
        break;
      case FaultKind::DebugSleep:
        sleeper.get();
        break;
      case FaultKind::Latency:
      case FaultKind::Reset:
      case FaultKind::Refused:
        proxy.set_fault(FaultProxy::Fault::None);
        break;
      case FaultKind::OutOfMemory:
        redis.command({"CONFIG", "SET", "maxmemory", "0"});
        break;
      case FaultKind::ScriptsRefused:
        redis.command({"ACL", "SETUSER", "default", "+@all"});
        break;
    }
  }
};

struct Tuning {
  std::string command_timeout = "100ms";  // short: a fault is noticed at once
  std::string drain_timeout = "2s";
};

std::string cachecar_yaml(const TestUpstream& upstream, const std::string& redis_url,
                          const std::string& extra = "", const Tuning& tuning = {}) {
  return "upstream:\n  url: " + upstream.url() +
         "\n  timeout: 10s\n"
         "redis:\n  url: " +
         redis_url + "\n  command_timeout: " + tuning.command_timeout +
         "\n  connect_timeout: 300ms\n"
         "drain_timeout: " +
         tuning.drain_timeout + "\n" + extra + kRoutes;
}

void wait_connected(Cachecar& cachecar) {
  REQUIRE_MESSAGE(cachecar.process().wait_for_output(": connected", 5s), cachecar.output());
}

enum class Timing { BeforeTheWrite, DuringTheWrite };

void write_during_fault(FaultKind kind, Timing timing) {
  const std::string fault = name_of(kind);
  const std::string when =
      timing == Timing::BeforeTheWrite ? "fault before the write" : "fault during the write";
  CAPTURE(fault);
  CAPTURE(when);
  FaultyRedis faulty;
  TestUpstream upstream;
  Catalog catalog(upstream);
  catalog.set("/products/1", "v1");
  Cachecar cachecar(cachecar_yaml(upstream, faulty.proxy.redis_url()));
  wait_connected(cachecar);
  const int port = cachecar.port();
  REQUIRE(get(port, "/products/1").body == "v1");
  REQUIRE(wait_for_hit(port, "/products/1", "v1"));

  Reader reader(port, "/products/1");
  std::this_thread::sleep_for(100ms);
  if (timing == Timing::BeforeTheWrite) {
    faulty.inject(kind);
    std::this_thread::sleep_for(300ms);
  } else {
    catalog.on_next_write([&faulty, kind] { faulty.inject(kind); });
  }
  const HttpResponse put = http_request(port, "PUT", "/products/1", {}, "v2");
  const auto answered = Clock::now();
  CHECK(put.status == 200);
  CHECK(catalog.writes() == 1);
  std::this_thread::sleep_for(300ms);  // reads go on during the fault
  faulty.recover(kind);

  CHECK(wait_for_hit(port, "/products/1", "v2"));
  std::this_thread::sleep_for(100ms);
  check_no_stale_read(reader.stop(), answered, "v2");
  if (kind == FaultKind::OutOfMemory) {
    // Redis refuses a script under OOM only before its first write, and the invalidation
    // deletes first: it needs no journal.
    CHECK(metric(cachecar, "cachecar_invalidation_journal_recorded_total") == 0);
    CHECK(faulty.redis.get("gen:{product:1}").has_value());
    return;
  }
  // The journal took the write and gave it back: a pass that never used it proves nothing.
  CHECK(wait_for_metric(cachecar, "cachecar_invalidation_journal_recorded_total",
                        [](double v) { return v >= 1; }));
  CHECK(wait_for_metric(cachecar, "cachecar_invalidation_journal_keys",
                        [](double v) { return v == 0; }));
  CHECK(metric(cachecar, "cachecar_invalidation_journal_replayed_total") >= 1);
  CHECK(cachecar.output().find("journaled product:1") != std::string::npos);
}

constexpr FaultKind kAllFaults[] = {FaultKind::Sigstop, FaultKind::ClientPause,
                                    FaultKind::DebugSleep, FaultKind::Latency,
                                    FaultKind::Reset,      FaultKind::Refused,
                                    FaultKind::OutOfMemory, FaultKind::ScriptsRefused};

TEST_CASE("journal: a write during each Redis fault is never followed by a stale read") {
  for (FaultKind kind : kAllFaults) {
    SUBCASE(name_of(kind)) { write_during_fault(kind, Timing::BeforeTheWrite); }
  }
}

TEST_CASE("journal: a fault that meets the write's own invalidation is replayed too") {
  for (FaultKind kind : kAllFaults) {
    SUBCASE(name_of(kind)) { write_during_fault(kind, Timing::DuringTheWrite); }
  }
}

// Two replicas on one Redis: A reaches it through the proxy, B directly and patiently (its
// checks must not turn into BYPASS on one slow reply of a loaded machine).
struct Fleet {
  explicit Fleet(const std::string& extra)
      : catalog(upstream),
        a(cachecar_yaml(upstream, faulty.proxy.redis_url(), extra)),
        b(cachecar_yaml(upstream, faulty.redis.url(), extra, {.command_timeout = "2s"})) {
    catalog.set("/products/1", "v1");
    wait_connected(a);
    wait_connected(b);
    REQUIRE(get(a.port(), "/products/1").body == "v1");
    REQUIRE(wait_for_hit(a.port(), "/products/1", "v1"));
    REQUIRE(wait_for_hit(b.port(), "/products/1", "v1"));
  }

  FaultyRedis faulty;
  TestUpstream upstream;
  Catalog catalog;
  Cachecar a;
  Cachecar b;
};

const std::string kRejectMode = "cache:\n  on_invalidation_failure: reject\n";

// Reject mode under each fault: a write is either refused unforwarded (the old value stays
// current) or fenced before it is forwarded; either way neither replica ever reads stale.
void reject_mode_fault(FaultKind kind, Timing timing) {
  const std::string fault = name_of(kind);
  const std::string when =
      timing == Timing::BeforeTheWrite ? "fault before the write" : "fault during the write";
  CAPTURE(fault);
  CAPTURE(when);
  Fleet fleet(kRejectMode);
  Reader on_a(fleet.a.port(), "/products/1");
  Reader on_b(fleet.b.port(), "/products/1");
  std::this_thread::sleep_for(100ms);
  if (timing == Timing::BeforeTheWrite) {
    fleet.faulty.inject(kind);
    std::this_thread::sleep_for(300ms);
  } else {
    fleet.catalog.on_next_write([&fleet, kind] { fleet.faulty.inject(kind); });
  }
  const int status = http_request(fleet.a.port(), "PUT", "/products/1", {}, "v2").status;
  const auto answered = Clock::now();
  CAPTURE(status);
  // Refused means never forwarded: a 503 leaves v1 the current value.
  REQUIRE((status == 200 || (status == 503 && timing == Timing::BeforeTheWrite)));
  CHECK(fleet.catalog.writes() == (status == 200 ? 1 : 0));
  const std::string current = status == 200 ? "v2" : "v1";
  std::this_thread::sleep_for(300ms);
  fleet.faulty.recover(kind);

  CHECK(wait_for_hit(fleet.b.port(), "/products/1", current));
  CHECK(wait_for_hit(fleet.a.port(), "/products/1", current));
  std::this_thread::sleep_for(100ms);
  check_no_stale_read(on_a.stop(), answered, current);
  check_no_stale_read(on_b.stop(), answered, current);
}

TEST_CASE("reject mode: under each Redis fault no replica ever reads stale") {
  for (FaultKind kind : kAllFaults) {
    SUBCASE(name_of(kind)) { reject_mode_fault(kind, Timing::BeforeTheWrite); }
  }
}

TEST_CASE("reject mode: a fault between the fence and the invalidation leaves no replica stale") {
  for (FaultKind kind : kAllFaults) {
    SUBCASE(name_of(kind)) { reject_mode_fault(kind, Timing::DuringTheWrite); }
  }
}

TEST_CASE("journal mode: another replica serves the old entry until the replay (the trade-off)") {
  Fleet fleet("");
  fleet.catalog.on_next_write([&fleet] { fleet.faulty.proxy.set_fault(FaultProxy::Fault::Refuse); });
  CHECK(http_request(fleet.a.port(), "PUT", "/products/1", {}, "v2").status == 200);
  // B still reads Redis, where the DEL never arrived.
  HttpResponse from_b = get(fleet.b.port(), "/products/1");
  CHECK(from_b.body == "v1");
  CHECK(from_b.header("X-Cache") == "HIT");
  fleet.faulty.proxy.set_fault(FaultProxy::Fault::None);
  // A's replay reaches Redis: B is fresh from then on.
  const auto deadline = Clock::now() + 10s;
  while (get(fleet.b.port(), "/products/1").body != "v2" && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  CHECK(get(fleet.b.port(), "/products/1").body == "v2");
}

TEST_CASE("reject mode: with Redis unreachable a write is refused unforwarded, so no replica is stale") {
  Fleet fleet(kRejectMode);
  Reader reader(fleet.b.port(), "/products/1");
  fleet.faulty.proxy.set_fault(FaultProxy::Fault::Refuse);
  std::this_thread::sleep_for(200ms);  // A has seen its connection go
  const HttpResponse refused = http_request(fleet.a.port(), "PUT", "/products/1", {}, "v2");
  CHECK(refused.status == 503);
  CHECK(fleet.catalog.writes() == 0);  // the upstream never saw it
  // B's old entry is the current value: serving it is not stale.
  CHECK(get(fleet.b.port(), "/products/1").body == "v1");
  CHECK(wait_for_metric(fleet.a, "cachecar_writes_rejected_total",
                        [](double v) { return v == 1; }));

  fleet.faulty.proxy.set_fault(FaultProxy::Fault::None);
  REQUIRE(fleet.a.process().wait_for_output("connected again", 5s));
  CHECK(http_request(fleet.a.port(), "PUT", "/products/1", {}, "v2").status == 200);
  const auto answered = Clock::now();
  CHECK(fleet.catalog.writes() == 1);
  CHECK(wait_for_hit(fleet.b.port(), "/products/1", "v2"));
  std::this_thread::sleep_for(200ms);
  check_no_stale_read(reader.stop(), answered, "v2");
}

TEST_CASE("reject mode: a fault after the fence leaves every replica bypassing, never stale") {
  Fleet fleet(kRejectMode);
  Reader reader(fleet.b.port(), "/products/1");
  std::this_thread::sleep_for(100ms);
  // The fence went through before the write was forwarded; the invalidation after it fails.
  fleet.catalog.on_next_write(
      [&fleet] { fleet.faulty.proxy.set_fault(FaultProxy::Fault::Blackhole); });
  CHECK(http_request(fleet.a.port(), "PUT", "/products/1", {}, "v2").status == 200);
  const auto answered = Clock::now();
  // B reaches Redis, finds the fence, and goes to the upstream.
  HttpResponse from_b = get(fleet.b.port(), "/products/1");
  CHECK(from_b.body == "v2");
  CHECK(from_b.header("X-Cache") == "BYPASS");
  std::this_thread::sleep_for(300ms);
  fleet.faulty.proxy.set_fault(FaultProxy::Fault::None);
  // A's journal lifts the fence: B caches again.
  CHECK(wait_for_hit(fleet.b.port(), "/products/1", "v2"));
  std::this_thread::sleep_for(200ms);
  check_no_stale_read(reader.stop(), answered, "v2");
}

TEST_CASE("reject mode: one write's answer does not lift another write's fence") {
  Fleet fleet(kRejectMode);
  const int a = fleet.a.port();
  const int b = fleet.b.port();
  // W2 through A: fenced, forwarded, and held by the upstream before it is applied.
  fleet.catalog.hold_write("w2");
  auto w2 = std::async(std::launch::async,
                       [a] { return http_request(a, "PUT", "/products/1", {}, "w2").status; });
  REQUIRE(fleet.catalog.wait_until_held());
  // W1 through B: fenced, applied, answered, its own fence lifted; W2's still stands.
  CHECK(http_request(b, "PUT", "/products/1", {}, "w1").status == 200);
  for (int i = 0; i < 3; ++i) {
    HttpResponse read = get(b, "/products/1");
    CHECK(read.body == "w1");
    CHECK(read.header("X-Cache") == "BYPASS");  // neither served nor stored
  }
  // W2 commits; its invalidation cannot reach Redis from A.
  fleet.catalog.on_next_write(
      [&fleet] { fleet.faulty.proxy.set_fault(FaultProxy::Fault::Blackhole); });
  fleet.catalog.release_held_write();
  CHECK(w2.get() == 200);
  const auto answered = Clock::now();
  Reader reader(b, "/products/1");
  std::this_thread::sleep_for(400ms);
  fleet.faulty.proxy.set_fault(FaultProxy::Fault::None);
  CHECK(wait_for_hit(b, "/products/1", "w2"));
  std::this_thread::sleep_for(200ms);
  check_no_stale_read(reader.stop(), answered, "w2");
}

TEST_CASE("reject mode: a fenced write the upstream never answers has its fence lifted") {
  Fleet fleet(kRejectMode);
  fleet.catalog.drop_write_answers(2);  // a retry on a fresh connection is dropped too
  CHECK(http_request(fleet.a.port(), "PUT", "/products/1", {}, "v2").status == 502);
  // Applied or not, nobody can tell: the key is invalidated, and caching resumes at once
  // rather than after the fence's ten minutes.
  CHECK(wait_for_hit(fleet.b.port(), "/products/1", "v2"));
  CHECK(wait_for_hit(fleet.a.port(), "/products/1", "v2"));
}

TEST_CASE("journal: a write whose client leaves before the answer is invalidated all the same") {
  Fleet fleet("");
  fleet.catalog.hold_write("v2");
  {
    HttpConnection client(fleet.a.port());
    client.send_raw(build_request("PUT", "/products/1", {}, "v2"));
    REQUIRE(fleet.catalog.wait_until_held());
  }  // closed: cachecar abandons the exchange, the upstream still applies the write
  CHECK(fleet.a.process().wait_for_output("the client left before the write was answered", 5s));
  // The owed invalidation reaches Redis on A's connection; B's reads go on another, so wait
  // for its effect (the guard moved) rather than for the log line alone.
  CHECK(wait_for_key(fleet.faulty.redis, "gen:{product:1}"));
  fleet.catalog.release_held_write();
  const auto deadline = Clock::now() + 5s;
  while (fleet.catalog.writes() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(fleet.catalog.writes() == 1);
  CHECK(get(fleet.b.port(), "/products/1").body == "v2");
  CHECK(get(fleet.a.port(), "/products/1").body == "v2");
}

TEST_CASE("journal: past max_keys one epoch bump makes every older entry a miss, fleet-wide") {
  Fleet fleet("cache:\n  invalidation_journal:\n    max_keys: 2\n");
  const int a = fleet.a.port();
  const int b = fleet.b.port();
  const char* const cached[] = {"/products/2", "/products/3", "/products/9", "/bare/9"};
  for (const char* path : cached) {
    fleet.catalog.set(path, std::string("old ") + path);
    REQUIRE(get(a, path).status == 200);
    REQUIRE(wait_for_hit(a, path, std::string("old ") + path));
    REQUIRE(wait_for_hit(b, path, std::string("old ") + path));
  }

  // Redis stays connected but refuses every script: invalidations, and the epoch bump.
  fleet.faulty.redis.command({"ACL", "SETUSER", "default", "-@scripting"});
  for (const char* path : {"/products/1", "/products/2", "/products/3"}) {
    CHECK(http_request(a, "PUT", path, {}, "v2").status == 200);
  }
  CHECK(fleet.a.process().wait_for_output("the journal is full", 2s));
  CHECK(wait_for_metric(fleet.a, "cachecar_cache_epoch_bump_owed",
                        [](double v) { return v == 1; }));
  // Until the bump lands A serves nothing from Redis, not even a key no write touched.
  for (const char* path : {"/products/9", "/bare/9"}) {
    HttpResponse read = get(a, path);
    CHECK(read.header("X-Cache") == "BYPASS");
    CHECK(read.body == std::string("old ") + path);
  }
  fleet.faulty.redis.command({"ACL", "SETUSER", "default", "+@all"});
  CHECK(fleet.a.process().wait_for_output("cache epoch bumped", 5s));
  CHECK(fleet.faulty.redis.get("cachecar:epoch") == "1");
  CHECK(wait_for_metric(fleet.a, "cachecar_invalidation_journal_overflows_total",
                        [](double v) { return v == 1; }));
  // B, which never lost Redis, no longer serves what was stored before the bump...
  for (const char* path : {"/products/9", "/bare/9"}) {
    CAPTURE(path);
    CHECK(get(b, path).header("X-Cache") == "MISS");
  }
  // ...stores it again under the new epoch, and serves that.
  CHECK(wait_for_hit(b, "/products/9", "old /products/9"));
  CHECK(wait_for_hit(b, "/bare/9", "old /bare/9"));
  CHECK(fleet.faulty.redis.get("epoch:{bare:9}") == "1");
  // The writes the journal gave up naming are fresh everywhere.
  for (const char* path : {"/products/2", "/products/3"}) {
    CHECK(get(b, path).body == "v2");
    CHECK(get(a, path).body == "v2");
  }
}

TEST_CASE("journal: a miss after an epoch bump never shares a fetch that began before it") {
  Fleet fleet("cache:\n  invalidation_journal:\n    max_keys: 1\n");
  const int a = fleet.a.port();
  fleet.catalog.set("/products/5", "old");
  fleet.catalog.slow_reads("/products/5", 4s);
  // L1 leads a fetch of the old value.
  auto leader = std::async(std::launch::async, [a] { return get(a, "/products/5").body; });
  std::this_thread::sleep_for(300ms);
  fleet.faulty.redis.command({"ACL", "SETUSER", "default", "-@scripting"});
  CHECK(http_request(a, "PUT", "/products/5", {}, "new").status == 200);
  CHECK(http_request(a, "PUT", "/products/6", {}, "x").status == 200);  // overflows
  fleet.faulty.redis.command({"ACL", "SETUSER", "default", "+@all"});
  REQUIRE(fleet.a.process().wait_for_output("cache epoch bumped", 3s));
  // The guard of /products/5 never moved; only the epoch says L2 came after the write.
  CHECK(get(a, "/products/5").body == "new");
  CHECK(leader.get() == "old");
}

// One cachecar whose PUT /products/1 was answered while Redis refused connections: the
// invalidation is owed, and the old entry is still in Redis.
struct OwedWrite {
  explicit OwedWrite(const std::string& drain_timeout)
      : catalog(upstream),
        cachecar(cachecar_yaml(upstream, faulty.proxy.redis_url(), "",
                               {.drain_timeout = drain_timeout})) {
    catalog.set("/products/1", "v1");
    wait_connected(cachecar);
    REQUIRE(get(cachecar.port(), "/products/1").body == "v1");
    REQUIRE(wait_for_key(faulty.redis, "product:1"));
    faulty.proxy.set_fault(FaultProxy::Fault::Refuse);
    std::this_thread::sleep_for(200ms);
    REQUIRE(http_request(cachecar.port(), "PUT", "/products/1", {}, "v2").status == 200);
  }

  FaultyRedis faulty;
  TestUpstream upstream;
  Catalog catalog;
  Cachecar cachecar;
};

TEST_CASE("journal: SIGTERM replays what is owed within drain_timeout") {
  OwedWrite owed("20s");
  owed.cachecar.process().signal(SIGTERM);
  CHECK(owed.cachecar.process().wait_for_output("to replay 1 owed invalidation", 2s));
  owed.faulty.proxy.set_fault(FaultProxy::Fault::None);
  // It leaves as soon as the replay lands, well before drain_timeout.
  CHECK(owed.cachecar.process().wait_exit(10s) == 0);
  CHECK_FALSE(owed.faulty.redis.get("product:1").has_value());
  CHECK(owed.faulty.redis.get("gen:{product:1}").has_value());  // the guard moved too
  CHECK(owed.cachecar.output().find("never confirmed") == std::string::npos);
}

TEST_CASE("journal: what drain_timeout leaves unreplayed is logged by key and counted") {
  OwedWrite owed("2s");
  const auto stopping = Clock::now();
  owed.cachecar.process().signal(SIGTERM);
  CHECK(owed.cachecar.process().wait_exit(6s) == 0);
  CHECK(Clock::now() - stopping >= 1900ms);  // it waited for Redis as long as it was allowed
  const std::string output = owed.cachecar.output();
  CHECK(output.find("stopping with 1 invalidation(s) Redis never confirmed") != std::string::npos);
  CHECK(output.find("until their TTL: product:1") != std::string::npos);
  // The entry is still there: exactly what the log warns about.
  CHECK(owed.faulty.redis.get("product:1").has_value());
}

}  // namespace
}  // namespace cachecar::test
