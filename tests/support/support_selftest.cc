// Self-test of the integration-test support library: each helper against the real thing it
// stands in front of (redis-server, a real TCP socket, a real child process), so an
// integration-test failure can be trusted to be cachecar's.

#include <arpa/inet.h>
#include <dirent.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/fault_proxy.h"
#include "support/free_port.h"
#include "support/http_client.h"
#include "support/process.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"
#include "support/socket_util.h"
#include "support/temp_dir.h"
#include "support/test_upstream.h"

namespace cachecar::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

size_t open_fd_count() {
  size_t count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (::readdir(dir) != nullptr) {
    ++count;
  }
  ::closedir(dir);
  return count;
}

// A sized read rather than istreambuf_iterator, which makes GCC 12 report a false
// -Wnull-dereference at -O2.
std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  REQUIRE(in);
  std::string content(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  return content;
}

UpstreamReply fault_reply(UpstreamReply::Fault fault) {
  UpstreamReply reply;
  reply.fault = fault;
  reply.body = std::string(10000, 'x');
  return reply;
}

}  // namespace

TEST_CASE("TempDir writes files and removes everything") {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    const std::string file = dir.write_file("sub/config.yaml", "listen: 1\n");
    CHECK(file == path + "/sub/config.yaml");
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    CHECK(line == "listen: 1");
  }
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("free_tcp_port returns a bindable port") {
  const int port = free_tcp_port();
  CHECK(port > 0);
  CHECK(port < 65536);
  TestUpstream upstream(port);
  CHECK(upstream.port() == port);
}

TEST_CASE("ChildProcess captures output, finds a port and reports the signal") {
  const size_t fds_before = open_fd_count();
  {
    ChildProcess child("sh", {"-c", "echo listening on 127.0.0.1:1234; sleep 5"});
    CHECK(child.pid() > 0);
    const std::optional<std::string> port =
        child.wait_for_regex(R"(listening on 127\.0\.0\.1:(\d+))", 5s);
    REQUIRE(port);
    CHECK(*port == "1234");
    CHECK(child.wait_for_output("listening", 1s));
    CHECK(child.running());
    CHECK_FALSE(child.wait_exit(50ms));
    const auto start = Clock::now();
    child.signal(SIGTERM);
    CHECK(child.wait_exit(3s) == 128 + SIGTERM);
    CHECK(since(start) < 2s);
    CHECK_FALSE(child.running());
    child.signal(SIGTERM);  // after reaping: a no-op, not a stray kill
  }
  CHECK(open_fd_count() == fds_before);
}

TEST_CASE("ChildProcess merges stderr, passes env and mirrors to a file") {
  TempDir dir;
  const std::string log = dir.path() + "/child.log";
  ChildProcessOptions options;
  options.env = {{"CACHECAR_TEST_VAR", "hello"}};
  options.log_path = log;
  options.working_dir = dir.path();
  ChildProcess child("sh", {"-c", "echo out $CACHECAR_TEST_VAR; echo err >&2; pwd; exit 3"},
                     options);
  CHECK(child.wait_exit(5s) == 3);
  const std::string output = child.output();
  CHECK(output.find("out hello\n") != std::string::npos);
  CHECK(output.find("err\n") != std::string::npos);
  CHECK(output.find(dir.path()) != std::string::npos);
  CHECK_FALSE(child.wait_for_output("never printed", 5s));  // returns at EOF, not after 5 s
  CHECK(read_file(log) == output);
}

TEST_CASE("ChildProcess failures and cleanup") {
  CHECK_THROWS_AS(ChildProcess("cachecar-no-such-program", {}), std::runtime_error);
  TempDir dir;
  const std::string not_executable = dir.write_file("script", "echo hi\n");
  CHECK_THROWS_AS(ChildProcess(not_executable, {}), std::runtime_error);

  // The destructor must not wait for a grandchild that keeps the pipe open.
  const auto start = Clock::now();
  {
    ChildProcess child("sh", {"-c", "sleep 30 & sleep 30"});
    CHECK_FALSE(child.wait_for_regex("(never)", 100ms));
  }
  CHECK(since(start) < 5s);

  // Whatever the child leaves running in its group dies when the child is reaped.
  ChildProcess parent("sh", {"-c", "sleep 30 & echo background $!"});
  const std::optional<std::string> background = parent.wait_for_regex(R"(background (\d+))", 5s);
  REQUIRE(background);
  CHECK(parent.wait_exit(5s) == 0);
  const std::string stat_path = "/proc/" + *background + "/stat";
  auto gone = [&stat_path] {
    std::ifstream stat(stat_path);
    std::string content;
    std::getline(stat, content);
    return content.empty() || content.find(") Z") != std::string::npos;  // absent or a zombie
  };
  const auto deadline = Clock::now() + 2s;
  while (!gone() && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(gone());
}

TEST_CASE("RedisServer commands, replies and restart on the same port") {
  RedisServer redis;
  CHECK(redis.port() > 0);
  CHECK(redis.url() == "redis://127.0.0.1:" + std::to_string(redis.port()));
  CHECK(redis.command({"PING"}) == "PONG");
  CHECK(redis.command({"SET", "product:42", "{\"id\":42}", "EX", "100"}) == "OK");
  CHECK(redis.get("product:42") == "{\"id\":42}");
  const long long ttl = redis.ttl("product:42");
  CHECK(ttl > 0);
  CHECK(ttl <= 100);
  CHECK(redis.ttl("missing") == -2);
  CHECK_FALSE(redis.get("missing"));
  CHECK(redis.command({"GET", "missing"}) == "(nil)");
  CHECK(redis.command({"INCR", "counter"}) == "1");
  CHECK(redis.command({"RPUSH", "list", "a", "b c"}) == "2");
  CHECK(redis.command({"LRANGE", "list", "0", "-1"}) == "a\nb c");
  CHECK(redis.command({"NO-SUCH-COMMAND"}).rfind("-ERR", 0) == 0);
  const std::string binary("a\0b\r\nc", 6);
  redis.command({"SET", "bin", binary});
  CHECK(redis.get("bin") == binary);

  const int port = redis.port();
  redis.stop();
  CHECK_FALSE(redis.running());
  CHECK_THROWS_AS(redis.command({"PING"}), std::runtime_error);
  redis.start();
  CHECK(redis.port() == port);
  CHECK(redis.command({"PING"}) == "PONG");
  CHECK_FALSE(redis.get("product:42"));  // no persistence across restarts

  redis.kill();
  CHECK_THROWS_AS(redis.command({"PING"}), std::runtime_error);
  redis.start();
  CHECK(redis.command({"PING"}) == "PONG");
  CHECK(redis.output().find("Ready to accept connections") != std::string::npos);
}

TEST_CASE("RedisServer pause makes commands time out, resume recovers") {
  RedisServer redis;
  redis.command({"SET", "k", "v"});
  redis.pause();
  const auto start = Clock::now();
  CHECK_THROWS_AS(redis.command({"GET", "k"}), std::runtime_error);
  CHECK(since(start) >= 1500ms);
  CHECK(since(start) < 5s);
  redis.resume();
  CHECK(redis.get("k") == "v");
  redis.pause();
  redis.stop();  // must not hang on a stopped process
  CHECK_FALSE(redis.running());
}

TEST_CASE("RedisServer with requirepass authenticates its own commands") {
  RedisServer redis({"--requirepass", "s3cret"});
  CHECK(redis.password() == "s3cret");
  CHECK(redis.command({"SET", "a", "1"}) == "OK");
  CHECK(redis.get("a") == "1");
}

TEST_CASE("TestUpstream keep-alive: three requests on one connection") {
  TestUpstream upstream;
  HttpConnection connection(upstream.port());
  for (int i = 0; i < 3; ++i) {
    const std::string target = "/products/" + std::to_string(i);
    const HttpResponse response = connection.request("GET", target);
    CHECK(response.status == 200);
    CHECK(response.reason == "OK");
    CHECK(response.complete);
    CHECK(response.header("content-type") == "application/json");
    CHECK(response.body == "{\"method\":\"GET\",\"target\":\"" + target + "\"}");
  }
  CHECK(upstream.connection_count() == 1);
  CHECK(upstream.request_count() == 3);
  const std::vector<ReceivedRequest> requests = upstream.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].connection_id == requests[2].connection_id);
  CHECK(requests[1].target == "/products/1");
  CHECK(requests[1].header("HOST") == "test");
  CHECK(requests[1].version == "HTTP/1.1");

  upstream.reset_counters();
  CHECK(upstream.request_count() == 0);
  CHECK(upstream.connection_count() == 0);
  const HttpResponse fresh = http_request(upstream.port(), "GET", "/again");
  CHECK(fresh.status == 200);
  CHECK(fresh.header("Connection") == "close");
  CHECK(upstream.connection_count() == 1);
  CHECK(upstream.last_request()->connection_id != requests[0].connection_id);
}

TEST_CASE("TestUpstream chunked reply, trailers-free decoding and headers") {
  const std::string body = pattern_chunk(0, 40000);
  TestUpstream upstream;
  upstream.set_handler([&body](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.chunked = true;
    reply.body = body;
    reply.headers = {{"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}, {"X-Version", "7"}};
    return reply;
  });
  HttpConnection connection(upstream.port());
  const HttpResponse response = connection.request("GET", "/chunked");
  CHECK(response.chunked);
  CHECK(response.complete);
  CHECK(response.body == body);
  CHECK(response.body_checksum == fnv1a(body));
  CHECK(response.header_count("set-cookie") == 2);
  CHECK(response.header_values("Set-Cookie") == std::vector<std::string>{"a=1", "b=2"});
  CHECK_FALSE(response.header("Content-Length"));
  // The connection stays usable after a chunked body.
  CHECK(connection.request("GET", "/second").body == body);
  CHECK(upstream.connection_count() == 1);
}

TEST_CASE("TestUpstream answers pipelined requests in order") {
  TestUpstream upstream;
  HttpConnection connection(upstream.port());
  connection.send_raw(build_request("GET", "/first", {}, {}) +
                      build_request("POST", "/second", {}, "payload"));
  const std::optional<HttpResponse> first = connection.read_response();
  const std::optional<HttpResponse> second = connection.read_response();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->body == "{\"method\":\"GET\",\"target\":\"/first\"}");
  CHECK(second->body == "{\"method\":\"POST\",\"target\":\"/second\"}");
  CHECK(upstream.requests()[1].body == "payload");
  CHECK(upstream.connection_count() == 1);
}

TEST_CASE("TestUpstream decodes uploads and checksums them") {
  TestUpstream upstream;
  const std::string body = pattern_chunk(12345, 1024 * 1024);
  HttpConnection connection(upstream.port());
  CHECK(
      connection.request("PUT", "/products/1", {{"Content-Type", "application/octet-stream"}}, body)
          .status == 200);
  ReceivedRequest received = *upstream.last_request();
  CHECK(received.body_size == body.size());
  CHECK(received.body_checksum == fnv1a(body));
  CHECK(received.body == body);
  CHECK(received.header("Content-Length") == std::to_string(body.size()));

  // Chunked upload, with a trailer.
  connection.send_raw(
      "POST /chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n");
  REQUIRE(connection.read_response());
  received = *upstream.last_request();
  CHECK(received.chunked);
  CHECK(received.body == "hello world");
  CHECK(received.trailers == HeaderList{{"X-Trailer", "yes"}});

  // Discarded bodies are still counted and checksummed.
  upstream.set_discard_bodies(true);
  CHECK(connection.request("PUT", "/big", {}, body).status == 200);
  received = *upstream.last_request();
  CHECK(received.body.empty());
  CHECK(received.body_size == body.size());
  CHECK(received.body_checksum == fnv1a(body));
}

TEST_CASE("TestUpstream Expect: 100-continue is exposed as an interim response") {
  TestUpstream upstream;
  HttpConnection connection(upstream.port());
  connection.send_raw(
      "PUT /x HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  const std::optional<HttpResponse> interim = connection.read_response();
  REQUIRE(interim);
  CHECK(interim->status == 100);
  CHECK(interim->is_interim());
  connection.send_raw("body");
  const std::optional<HttpResponse> final_response = connection.read_response();
  REQUIRE(final_response);
  CHECK(final_response->status == 200);
  CHECK(upstream.last_request()->body == "body");

  const HttpResponse skipped =
      connection.request("PUT", "/y", {{"Expect", "100-continue"}}, "data");
  CHECK(skipped.status == 200);
  CHECK(skipped.interim_statuses == std::vector<int>{100});
}

TEST_CASE("TestUpstream streams a generated 50 MB body") {
  constexpr size_t kSize = 50 * 1024 * 1024;
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.generated_body_bytes = kSize;
    return reply;
  });
  HttpConnection connection(upstream.port());
  connection.set_store_body(false);
  const HttpResponse response = connection.request("GET", "/big");
  CHECK(response.complete);
  CHECK(response.header("Content-Length") == std::to_string(kSize));
  CHECK(response.body.empty());
  CHECK(response.body_size == kSize);
  CHECK(response.body_checksum == pattern_checksum(kSize));

  const HttpResponse head = connection.request("HEAD", "/big");
  CHECK(head.complete);
  CHECK(head.body_size == 0);
  CHECK(head.header("Content-Length") == std::to_string(kSize));
  CHECK(connection.request("GET", "/big").body_checksum ==
        pattern_checksum(kSize));  // still in sync
}

namespace {

// One recv per call, so a test can see how bytes were segmented.
std::vector<std::string> read_segments(int fd, size_t total) {
  std::vector<std::string> reads;
  size_t received = 0;
  while (received < total) {
    char buffer[256];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    REQUIRE(n > 0);
    reads.emplace_back(buffer, static_cast<size_t>(n));
    received += static_cast<size_t>(n);
  }
  return reads;
}

}  // namespace

TEST_CASE("wait_until_peer_read tells read bytes from unread ones") {
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest&) {
    UpstreamReply reply;
    reply.fault = UpstreamReply::Fault::NoResponse;
    return reply;
  });
  UniqueFd fd = connect_loopback(upstream.port(), 2s);
  // The upstream reads the head it waits for, and nothing after it until it answers.
  REQUIRE(send_all(fd.get(), "GET / HTTP/1.1\r\nHost: t\r\n\r\n") == IoStatus::Ok);
  CHECK(wait_until_peer_read(fd.get(), 2s));
  REQUIRE(send_all(fd.get(), "unread") == IoStatus::Ok);
  const auto start = Clock::now();
  CHECK_FALSE(wait_until_peer_read(fd.get(), 100ms));
  CHECK(since(start) >= 100ms);
  upstream.stop();
}

TEST_CASE("TestUpstream split_at: a reply in the segments asked for") {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
  TestUpstream upstream;
  upstream.set_handler([&raw](const ReceivedRequest& request) {
    UpstreamReply reply;
    if (request.target == "/built") {
      reply.body = "0123456789";
      reply.chunked = true;
      reply.split_at = std::vector<size_t>{1, 30, 60};
    } else {
      reply.raw = raw;
      reply.split_at = std::vector<size_t>{5, 40, 41};
      reply.wait_between_segments = request.target == "/wait";
    }
    return reply;
  });

  // Each segment waits until the one before was read, so every recv returns one segment.
  UniqueFd fd = connect_loopback(upstream.port(), 2s);
  set_io_timeout(fd.get(), 5s);
  REQUIRE(send_all(fd.get(), "GET /wait HTTP/1.1\r\nHost: t\r\n\r\n") == IoStatus::Ok);
  CHECK(read_segments(fd.get(), raw.size()) ==
        std::vector<std::string>{raw.substr(0, 5), raw.substr(5, 35), raw.substr(40, 1),
                                 raw.substr(41)});

  HttpConnection connection(upstream.port());
  const HttpResponse back_to_back = connection.request("GET", "/nowait");
  CHECK(back_to_back.complete);
  CHECK(back_to_back.body == "0123456789");
  const HttpResponse built = connection.request("GET", "/built");
  CHECK(built.complete);
  CHECK(built.chunked);
  CHECK(built.body == "0123456789");
  CHECK(upstream.connection_count() == 2);
}

TEST_CASE("pattern_chunk is position-addressed") {
  const std::string whole = pattern_chunk(0, 1000);
  CHECK(whole.size() == 1000);
  CHECK(whole.substr(0, 17) == "0000000000000000 ");
  CHECK(whole.substr(64, 17) == "0000000000000064 ");
  CHECK(pattern_chunk(100, 300) == whole.substr(100, 300));
  CHECK(pattern_checksum(1000) == fnv1a(whole));
  CHECK(fnv1a(whole.substr(500), fnv1a(whole.substr(0, 500))) == fnv1a(whole));
}

TEST_CASE("TestUpstream framing options: close_after, omit_content_length, delay") {
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest& request) {
    if (request.target == "/gone") {
      return UpstreamReply{.status = 410, .body = "gone"};
    }
    UpstreamReply reply;
    reply.body = "eof-delimited body";
    if (request.target == "/eof") {
      reply.omit_content_length = true;
    } else if (request.target == "/close") {
      reply.close_after = true;
    } else if (request.target == "/slow") {
      reply.delay = 300ms;
    }
    return reply;
  });
  {
    HttpConnection connection(upstream.port());
    const HttpResponse response = connection.request("GET", "/eof");
    CHECK(response.complete);
    CHECK(response.body == "eof-delimited body");
    CHECK_FALSE(response.header("Content-Length"));
    CHECK(connection.closed_by_peer(1s));
  }
  {
    HttpConnection connection(upstream.port());
    const HttpResponse response = connection.request("GET", "/close");
    CHECK(response.header("Connection") == "close");
    CHECK(connection.closed_by_peer(1s));
  }
  {
    HttpConnection connection(upstream.port());
    const HttpResponse gone = connection.request("GET", "/gone");
    CHECK(gone.status == 410);
    CHECK(gone.reason == "Gone");
    CHECK(gone.body == "gone");
    CHECK_FALSE(connection.closed_by_peer(50ms));
    const auto start = Clock::now();
    CHECK(connection.request("GET", "/slow").status == 200);
    CHECK(since(start) >= 300ms);
  }
}

TEST_CASE("TestUpstream faults") {
  // Declared before the upstream: its connection threads run the handler until it is destroyed.
  UpstreamReply next;
  std::mutex mutex;
  TestUpstream upstream;
  upstream.set_handler([&](const ReceivedRequest&) {
    std::lock_guard lock(mutex);
    return next;
  });
  auto set_next = [&](UpstreamReply reply) {
    std::lock_guard lock(mutex);
    next = std::move(reply);
  };

  SUBCASE("ResetBeforeResponse") {
    set_next(fault_reply(UpstreamReply::Fault::ResetBeforeResponse));
    HttpConnection connection(upstream.port());
    connection.send_raw(build_request("GET", "/", {}, {}));
    CHECK_FALSE(connection.read_response());
    CHECK(connection.last_error() == "connection reset");
  }
  SUBCASE("CloseBeforeResponse") {
    set_next(fault_reply(UpstreamReply::Fault::CloseBeforeResponse));
    HttpConnection connection(upstream.port());
    connection.send_raw(build_request("GET", "/", {}, {}));
    CHECK_FALSE(connection.read_response());
    CHECK(connection.last_error() == "connection closed by peer");
  }
  SUBCASE("ResetMidBody") {
    set_next(fault_reply(UpstreamReply::Fault::ResetMidBody));
    HttpConnection connection(upstream.port());
    connection.send_raw(build_request("GET", "/", {}, {}));
    const std::optional<HttpResponse> response = connection.read_response();
    REQUIRE(response);
    CHECK_FALSE(response->complete);
    CHECK(response->header("Content-Length") == "10000");
    CHECK(response->body_size == 5000);
    CHECK(connection.last_error().find("reset") != std::string::npos);
  }
  SUBCASE("ResetMidBody, chunked and generated") {
    UpstreamReply reply = fault_reply(UpstreamReply::Fault::ResetMidBody);
    reply.chunked = true;
    reply.generated_body_bytes = 1000000;
    set_next(reply);
    HttpConnection connection(upstream.port());
    connection.send_raw(build_request("GET", "/", {}, {}));
    const std::optional<HttpResponse> response = connection.read_response();
    REQUIRE(response);
    CHECK(response->chunked);
    CHECK_FALSE(response->complete);
    CHECK(response->body_size == 500000);
  }
  SUBCASE("Garbage") {
    set_next(fault_reply(UpstreamReply::Fault::Garbage));
    HttpConnection connection(upstream.port());
    connection.send_raw(build_request("GET", "/", {}, {}));
    CHECK_THROWS_AS(connection.read_response(), std::runtime_error);
  }
  SUBCASE("SlowHeaders") {
    UpstreamReply reply = fault_reply(UpstreamReply::Fault::SlowHeaders);
    reply.headers = {{"X-One", "1"}, {"X-Two", "2"}};
    reply.header_interval = 100ms;
    set_next(reply);
    HttpConnection connection(upstream.port());
    const auto start = Clock::now();
    const HttpResponse response = connection.request("GET", "/");
    // Three header lines (two given + Content-Length) and the empty line, 100 ms apart.
    CHECK(since(start) >= 400ms);
    CHECK(response.complete);
    CHECK(response.header("X-Two") == "2");
    CHECK(response.body_size == 10000);
  }
  SUBCASE("NoResponse until stop") {
    set_next(fault_reply(UpstreamReply::Fault::NoResponse));
    HttpConnection connection(upstream.port(), 300ms);
    connection.send_raw(build_request("GET", "/", {}, {}));
    CHECK_FALSE(connection.read_response());
    CHECK(connection.last_error() == "timed out");
    CHECK(upstream.wait_for_requests(1, 1s));
    const auto start = Clock::now();
    upstream.stop();
    CHECK(since(start) < 1s);
    connection.set_timeout(2s);
    CHECK(connection.closed_by_peer(2s));
  }
}

TEST_CASE("TestUpstream rejects malformed requests and stops promptly") {
  TestUpstream upstream;
  {
    HttpConnection connection(upstream.port());
    connection.send_raw("NONSENSE\r\n\r\n");
    const std::optional<HttpResponse> response = connection.read_response();
    REQUIRE(response);
    CHECK(response->status == 400);
    CHECK(connection.closed_by_peer(1s));
  }
  CHECK(upstream.request_count() == 0);

  HttpConnection idle(upstream.port());  // a keep-alive connection left open
  CHECK(idle.request("GET", "/").status == 200);
  const auto start = Clock::now();
  upstream.stop();
  upstream.stop();  // idempotent
  CHECK(since(start) < 1s);
  CHECK(idle.closed_by_peer(1s));
  CHECK_FALSE(HttpConnection::try_connect(upstream.port(), 500ms));
}

TEST_CASE("HttpConnection reports truncated bodies and missing final chunks") {
  // A raw server that lies about framing, to check the client notices.
  TestUpstream upstream;
  upstream.set_handler([](const ReceivedRequest& request) {
    UpstreamReply reply;
    if (request.target == "/short") {
      reply.headers = {{"Content-Length", "100"}};
      reply.body = "only this";
      reply.close_after = true;
    } else {
      reply.headers = {{"Transfer-Encoding", "chunked"}};
      reply.body = "4\r\nabcd\r\n";  // no last chunk
      reply.close_after = true;
    }
    return reply;
  });
  const HttpResponse truncated = http_request(upstream.port(), "GET", "/short");
  CHECK_FALSE(truncated.complete);
  CHECK(truncated.body == "only this");
  const HttpResponse unfinished = http_request(upstream.port(), "GET", "/chunks");
  CHECK(unfinished.chunked);
  CHECK_FALSE(unfinished.complete);
  CHECK(unfinished.body == "abcd");
}

TEST_CASE("TestUpstream wait_for_requests counts concurrent clients") {
  TestUpstream upstream;
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back(
        [port = upstream.port(), i] { http_request(port, "GET", "/c/" + std::to_string(i)); });
  }
  CHECK(upstream.wait_for_requests(8, 5s));
  for (std::thread& client : clients) {
    client.join();
  }
  CHECK(upstream.connection_count() == 8);
  CHECK_FALSE(upstream.wait_for_requests(9, 50ms));
}

// Built when the test target defines the binary's path, e.g.
// target_compile_definitions(T PRIVATE CACHECAR_PRODUCT_API="$<TARGET_FILE:product_api>").
#ifdef CACHECAR_PRODUCT_API
TEST_CASE("product_api serves the demo catalogue and exits cleanly") {
  const int port = free_tcp_port();
  ChildProcess api(CACHECAR_PRODUCT_API, {"--port", std::to_string(port)});
  REQUIRE(api.wait_for_output("listening on", 5s));

  HttpResponse response = http_request(port, "GET", "/products/42");
  CHECK(response.status == 200);
  CHECK(response.header("Content-Type") == "application/json");
  CHECK(response.body == R"({"id":42,"name":"Mechanical Keyboard","price":129.99})");
  CHECK(http_request(port, "GET", "/products/101").body == R"({"error":"product not found"})");
  CHECK(http_request(port, "GET", "/products/abc").status == 404);
  const std::string list = http_request(port, "GET", "/products").body;
  CHECK(list.front() == '[');
  CHECK(list.find(R"("id":100,)") != std::string::npos);

  response = http_request(port, "PUT", "/products/42", {{"Content-Type", "application/json"}},
                          R"({"name":"Split Keyboard","price":199.0})");
  CHECK(response.status == 200);
  CHECK(response.body == R"({"id":42,"name":"Split Keyboard","price":199.0})");
  CHECK(http_request(port, "GET", "/products/42").body == response.body);
  CHECK(http_request(port, "DELETE", "/products/42").status == 204);
  CHECK(http_request(port, "DELETE", "/products/42").status == 404);
  CHECK(http_request(port, "POST", "/products/1").status == 405);
  CHECK(http_request(port, "GET", "/nowhere").status == 404);
  CHECK(api.wait_for_output("GET /products/42 200", 1s));

  api.signal(SIGTERM);
  CHECK(api.wait_exit(5s) == 0);
}
#endif

// FaultProxy, between a raw RESP client and a real redis-server: each fault as the client sees it.
namespace {

using Fault = FaultProxy::Fault;

constexpr std::string_view kPing = "*1\r\n$4\r\nPING\r\n";

// Built with append(), as encode_command in redis_server.cc is (GCC bug 105329).
std::string resp_command(const std::vector<std::string>& argv) {
  std::string out;
  out.append("*").append(std::to_string(argv.size())).append("\r\n");
  for (const std::string& arg : argv) {
    out.append("$").append(std::to_string(arg.size())).append("\r\n").append(arg).append("\r\n");
  }
  return out;
}

// How a read ended when it did not yield a line: "<timed out>", "<connection reset>", ...
std::string status_text(IoStatus status) {
  return std::string("<").append(to_string(status)).append(">");
}

// A raw RESP client, so a test sees exactly what crosses the proxy.
class RespClient {
 public:
  explicit RespClient(int port, std::chrono::milliseconds timeout = 2s)
      : fd_(connect_loopback(port, 2s)), reader_(fd_.get()) {
    set_io_timeout(fd_.get(), timeout);
  }

  void set_timeout(std::chrono::milliseconds timeout) { set_io_timeout(fd_.get(), timeout); }
  IoStatus send(std::string_view bytes) { return send_all(fd_.get(), bytes); }

  // One reply line without its CRLF ("+PONG", ":2", "$5"), or status_text() of what ended
  // the read.
  std::string line() {
    const ReadResult result = reader_.read_until("\r\n", 64 * 1024);
    return result.status == IoStatus::Ok ? result.text : status_text(result.status);
  }

  // A bulk reply's bytes, or "<unexpected: LINE>" / status_text() otherwise.
  std::string bulk() {
    const std::string head = line();
    if (head.size() < 2 || head[0] != '$') {
      return "<unexpected: " + head + ">";
    }
    std::string bytes;
    const IoStatus status = reader_.read_exact(
        std::stoul(head.substr(1)), [&bytes](std::string_view piece) { bytes.append(piece); });
    if (status != IoStatus::Ok) {
      return status_text(status);
    }
    const std::string end = line();
    return end.empty() ? bytes : "<unterminated: " + end + ">";
  }

 private:
  UniqueFd fd_;
  SocketReader reader_;
};

// What a client that connects to `port` and sends PING gets: "+PONG", "<refused>",
// "<connection reset>", "<connection closed by peer>", "<timed out>", ...
std::string ping_outcome(int port, std::chrono::milliseconds timeout = 2s) {
  ConnectResult connected = try_connect_loopback(port, 2s);
  if (!connected.fd.valid()) {
    if (connected.error.find(std::strerror(ECONNREFUSED)) != std::string::npos) {
      return "<refused>";
    }
    // A reset that overtakes the handshake's completion shows up in the connect.
    if (connected.error.find(std::strerror(ECONNRESET)) != std::string::npos) {
      return status_text(IoStatus::Reset);
    }
    return connected.error;
  }
  set_io_timeout(connected.fd.get(), timeout);
  if (const IoStatus status = send_all(connected.fd.get(), kPing); status != IoStatus::Ok) {
    return status_text(status);
  }
  SocketReader reader(connected.fd.get());
  const ReadResult result = reader.read_until("\r\n", 1024);
  return result.status == IoStatus::Ok ? result.text : status_text(result.status);
}

// errno of a plain blocking connect() to 127.0.0.1:port, or 0 if it connected.
int connect_errno(int port) {
  const UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ? 0
                                                                                         : errno;
}

size_t thread_count() {
  size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

// CPU time used by this process (all its threads), to tell waiting from spinning.
std::chrono::milliseconds cpu_time() {
  timespec ts{};
  REQUIRE(::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(ts.tv_sec) +
                                                               std::chrono::nanoseconds(ts.tv_nsec));
}

// A number from a Redis INFO section, e.g. info_field(redis, "clients", "connected_clients:").
long long info_field(RedisServer& redis, const std::string& section, std::string_view field) {
  std::istringstream info(redis.command({"INFO", section}));
  std::string line;
  while (std::getline(info, line)) {
    if (line.rfind(field, 0) == 0) {
      return std::stoll(line.substr(field.size()));
    }
  }
  return -1;
}

// Redis's client count, which includes the connection that asks.
long long redis_clients(RedisServer& redis) {
  return info_field(redis, "clients", "connected_clients:");
}

// PING commands Redis has executed (RedisServer's own start-up check included).
long long redis_pings(RedisServer& redis) {
  return info_field(redis, "commandstats", "cmdstat_ping:calls=");
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 2s) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Whether a TCP socket whose local port is `port` is in TIME_WAIT (state 06 in /proc/net/tcp).
bool time_wait_on(int port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot;
    std::string local;
    std::string remote;
    std::string state;
    fields >> slot >> local >> remote >> state;
    const size_t colon = local.find(':');
    if (colon != std::string::npos && std::stoi(local.substr(colon + 1), nullptr, 16) == port &&
        state == "06") {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("FaultProxy None forwards both ways, and stop leaves no thread or fd behind") {
  RedisServer redis;
  const size_t fds_before = open_fd_count();
  const size_t threads_before = thread_count();
  {
    FaultProxy proxy(redis.port());
    CHECK(thread_count() == threads_before + 1);
    CHECK(proxy.port() != redis.port());
    CHECK(proxy.redis_url() == "redis://127.0.0.1:" + std::to_string(proxy.port()));

    RespClient client(proxy.port());
    REQUIRE(client.send(kPing) == IoStatus::Ok);
    CHECK(client.line() == "+PONG");
    // Larger than the proxy's 1 MiB queue and the socket buffers, so both directions go
    // through partial writes and back-pressure.
    const std::string big = pattern_chunk(0, 3 * 1024 * 1024);
    REQUIRE(client.send(resp_command({"SET", "big", big})) == IoStatus::Ok);
    CHECK(client.line() == "+OK");
    const std::optional<std::string> stored = redis.get("big");
    REQUIRE(stored);
    CHECK(stored->size() == big.size());
    CHECK((*stored == big));  // not decomposed: a failure would print 3 MB
    REQUIRE(client.send(resp_command({"GET", "big"})) == IoStatus::Ok);
    const std::string fetched = client.bulk();
    CHECK(fetched.size() == big.size());
    CHECK((fetched == big));

    RespClient second(proxy.port());
    REQUIRE(second.send(kPing) == IoStatus::Ok);
    CHECK(second.line() == "+PONG");
    CHECK(proxy.connections_accepted() == 2);

    const auto start = Clock::now();
    proxy.stop();
    proxy.stop();  // idempotent
    CHECK(since(start) < 1s);
    CHECK(client.line() == status_text(IoStatus::Eof));
    CHECK(ping_outcome(proxy.port()) == "<refused>");
    proxy.set_fault(Fault::Reset);  // after stop() it does nothing, and does not wait
  }
  CHECK(open_fd_count() == fds_before);
  CHECK(thread_count() == threads_before);
}

TEST_CASE("FaultProxy Blackhole forwards nothing, and leaving it resets the held connections") {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  RespClient held(proxy.port(), 300ms);
  RespClient quitter(proxy.port());
  REQUIRE(held.send(kPing) == IoStatus::Ok);
  REQUIRE(held.line() == "+PONG");
  REQUIRE(quitter.send(kPing) == IoStatus::Ok);
  REQUIRE(quitter.line() == "+PONG");
  const long long pings = redis_pings(redis);
  REQUIRE(pings > 0);

  proxy.set_fault(Fault::Blackhole);
  REQUIRE(held.send(kPing) == IoStatus::Ok);
  const auto start = Clock::now();
  const auto cpu_start = cpu_time();
  CHECK(held.line() == status_text(IoStatus::Timeout));
  CHECK(since(start) >= 250ms);
  CHECK(cpu_time() - cpu_start < 100ms);  // the proxy waits in poll(), it does not spin
  // New connections are accepted and held as well.
  RespClient late(proxy.port(), 300ms);
  REQUIRE(late.send(kPing) == IoStatus::Ok);
  CHECK(late.line() == status_text(IoStatus::Timeout));
  CHECK(proxy.connections_accepted() == 3);
  CHECK(redis_pings(redis) == pings);  // the held PINGs never reached Redis

  // A held client that closes is let go: the proxy drops its connection to Redis. Redis
  // counts the proxy's connections for `held` and `quitter` and the one asking.
  CHECK(eventually([&] { return redis_clients(redis) == 3; }));
  { [[maybe_unused]] const RespClient closing = std::move(quitter); }
  CHECK(eventually([&] { return redis_clients(redis) == 2; }));

  proxy.set_fault(Fault::None);
  held.set_timeout(2s);
  late.set_timeout(2s);
  CHECK(held.line() == status_text(IoStatus::Reset));
  CHECK(late.line() == status_text(IoStatus::Reset));
  CHECK(ping_outcome(proxy.port()) == "+PONG");
}

TEST_CASE("FaultProxy Delay holds each chunk in order, and back to None delivers the queue first") {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  RespClient client(proxy.port());
  proxy.set_fault(Fault::Delay, 300ms);

  auto start = Clock::now();
  const auto cpu_start = cpu_time();
  REQUIRE(client.send(kPing) == IoStatus::Ok);
  CHECK(client.line() == "+PONG");
  const auto round_trip = since(start);
  CHECK(round_trip >= 550ms);  // 300 ms each way
  CHECK(round_trip < 2s);
  CHECK(cpu_time() - cpu_start < 150ms);  // timed waits, not a spin

  // SET and INCR are queued under the delay when it ends; GET, sent without delay, must still
  // wait behind them, or it would read a missing key.
  start = Clock::now();
  REQUIRE(client.send(resp_command({"SET", "k", "1"})) == IoStatus::Ok);
  REQUIRE(client.send(resp_command({"INCR", "k"})) == IoStatus::Ok);
  proxy.set_fault(Fault::None);
  REQUIRE(client.send(resp_command({"GET", "k"})) == IoStatus::Ok);
  CHECK(client.line() == "+OK");
  CHECK(client.line() == ":2");
  CHECK(client.bulk() == "2");
  CHECK(since(start) >= 250ms);

  start = Clock::now();
  REQUIRE(client.send(kPing) == IoStatus::Ok);
  CHECK(client.line() == "+PONG");
  CHECK(since(start) < 200ms);
}

TEST_CASE("FaultProxy keeps the stream in order while another thread flips Delay and None") {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  RespClient client(proxy.port(), 5s);
  std::atomic<bool> done{false};
  std::thread flipper([&] {
    for (int i = 0; !done; ++i) {
      proxy.set_fault(i % 2 == 0 ? Fault::Delay : Fault::None, std::chrono::milliseconds(i % 7));
    }
  });
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    REQUIRE(client.send(resp_command({"ECHO", std::to_string(i)})) == IoStatus::Ok);
    expected.append(std::to_string(i)).append(" ");
    std::this_thread::sleep_for(1ms);
  }
  std::string received;
  for (int i = 0; i < 200; ++i) {
    received.append(client.bulk()).append(" ");
  }
  done = true;
  flipper.join();
  CHECK(received == expected);
}

TEST_CASE("FaultProxy Reset resets open connections and every new one") {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  RespClient open(proxy.port());
  REQUIRE(open.send(kPing) == IoStatus::Ok);
  REQUIRE(open.line() == "+PONG");
  CHECK(redis_clients(redis) == 2);  // the proxy's connection and the one asking

  proxy.set_fault(Fault::Reset);
  CHECK(open.line() == status_text(IoStatus::Reset));
  CHECK(eventually([&] { return redis_clients(redis) == 1; }));  // the target's side went too
  CHECK(ping_outcome(proxy.port()) == status_text(IoStatus::Reset));
  CHECK(ping_outcome(proxy.port()) == status_text(IoStatus::Reset));
  CHECK(proxy.connections_accepted() == 3);  // accepted, then reset

  proxy.set_fault(Fault::None);
  CHECK(ping_outcome(proxy.port()) == "+PONG");
}

TEST_CASE("FaultProxy Refuse refuses connects, then listens again on the same port") {
  RedisServer redis;
  FaultProxy proxy(redis.port());
  const int port = proxy.port();
  RespClient open(port);
  REQUIRE(open.send(kPing) == IoStatus::Ok);
  REQUIRE(open.line() == "+PONG");

  std::thread([&] { proxy.set_fault(Fault::Refuse); }).join();  // as an upstream handler would
  CHECK(open.line() == status_text(IoStatus::Reset));
  CHECK(connect_errno(port) == ECONNREFUSED);
  CHECK(ping_outcome(port) == "<refused>");

  proxy.set_fault(Fault::None);
  CHECK(proxy.port() == port);
  {
    RespClient back(port);
    REQUIRE(back.send(kPing) == IoStatus::Ok);
    CHECK(back.line() == "+PONG");
    // Redis closes first, so the proxy's end on `port` closes first and stays in TIME_WAIT,
    // which the next recovery has to bind past.
    REQUIRE(back.send(resp_command({"QUIT"})) == IoStatus::Ok);
    CHECK(back.line() == "+OK");
    CHECK(back.line() == status_text(IoStatus::Eof));
  }
  REQUIRE(eventually([&] { return time_wait_on(port); }));

  proxy.set_fault(Fault::Refuse);
  CHECK(connect_errno(port) == ECONNREFUSED);
  proxy.set_fault(Fault::None);
  CHECK(ping_outcome(port) == "+PONG");
  CHECK(proxy.port() == port);
  CHECK(proxy.connections_accepted() == 3);  // refused connects were never accepted
}

TEST_CASE("FaultProxy resets the client when the target is down") {
  FaultProxy proxy(free_tcp_port());
  CHECK(ping_outcome(proxy.port()) == status_text(IoStatus::Reset));
  CHECK(proxy.connections_accepted() == 1);
}

// ---- RedisCluster ----------------------------------------------------------------------------

namespace {

// How many slots `node` serves, in the slot map of the cluster's first live primary.
int slots_served_by(RedisCluster& cluster, const RedisServer& node) {
  const RespReply slots = cluster.primaries().front()->command_reply({"CLUSTER", "SLOTS"});
  int count = 0;
  for (const RespReply& range : slots.elements) {
    if (range.elements.at(2).elements.at(1).integer == node.port()) {
      count += static_cast<int>(range.elements.at(1).integer - range.elements.at(0).integer + 1);
    }
  }
  return count;
}

// Whether a redis+cluster:// URL lists `node` as a seed.
bool url_names(const std::string& url, const RedisServer& node) {
  const std::string seeds = "," + url.substr(url.find("//") + 2) + ",";
  return seeds.find(",127.0.0.1:" + std::to_string(node.port()) + ",") != std::string::npos;
}

bool contains(const std::vector<RedisServer*>& nodes, const RedisServer* node) {
  return std::find(nodes.begin(), nodes.end(), node) != nodes.end();
}

}  // namespace

TEST_CASE("redis cluster: three primaries serve all 16384 slots and redirect with MOVED") {
  RedisCluster cluster;
  CHECK(cluster.size() == 3);
  const std::vector<RedisServer*> primaries = cluster.primaries();
  REQUIRE(primaries.size() == 3);
  int served = 0;
  for (RedisServer* primary : primaries) {
    served += slots_served_by(cluster, *primary);
    CHECK(slots_served_by(cluster, *primary) > 5000);
    CHECK(cluster.node_id(*primary).size() == 40);
    CHECK(url_names(cluster.url(), *primary));
  }
  CHECK(served == 16384);
  CHECK(cluster.url().rfind("redis+cluster://127.0.0.1:", 0) == 0);
  CHECK(cluster.node_id(*primaries[0]) != cluster.node_id(*primaries[1]));
  for (size_t i = 0; i < cluster.size(); ++i) {
    const std::string info = cluster.node(i).command({"CLUSTER", "INFO"});
    CHECK(info.find("cluster_state:ok") != std::string::npos);
    CHECK(info.find("cluster_known_nodes:3") != std::string::npos);
  }
  CHECK(cluster.key_slot("foo") == 12182);  // the example in Redis's CLUSTER KEYSLOT page
  CHECK(cluster.key_slot("{user1}.following") == cluster.key_slot("{user1}.followers"));

  CHECK(cluster.command_for_key("product:42", {"SET", "product:42", "{\"id\":42}"}) == "OK");
  CHECK(cluster.get("product:42") == "{\"id\":42}");
  CHECK_FALSE(cluster.get("missing"));
  RedisServer& owner = cluster.primary_for("product:42");
  CHECK(owner.get("product:42") == "{\"id\":42}");
  RedisServer* wrong = primaries[0] == &owner ? primaries[1] : primaries[0];
  CHECK(wrong->command({"SET", "product:42", "stale"}) ==
        "-MOVED " + std::to_string(cluster.key_slot("product:42")) +
            " 127.0.0.1:" + std::to_string(owner.port()));
  CHECK(cluster.get("product:42") == "{\"id\":42}");

  for (int i = 0; i < 30; ++i) {
    const std::string key = "k" + std::to_string(i);
    REQUIRE(cluster.command_for_key(key, {"SET", key, "v"}) == "OK");
  }
  CHECK(cluster.total_keys() == 31);
  cluster.flush_all();
  CHECK(cluster.total_keys() == 0);
  CHECK_THROWS_AS(RedisCluster(2), std::invalid_argument);
  CHECK_THROWS_AS(cluster.failover(*primaries[0]), std::logic_error);
  CHECK_THROWS_AS(cluster.kill_primary(*primaries[0]), std::runtime_error);  // no replica
  CHECK(primaries[0]->running());
}

TEST_CASE("redis cluster: reshard moves slots and their keys, also under load") {
  RedisCluster cluster;
  const std::vector<RedisServer*> primaries = cluster.primaries();
  REQUIRE(primaries.size() == 3);
  RedisServer& from = *primaries[0];
  RedisServer& to = *primaries[1];
  std::vector<std::string> keys;
  for (int i = 0; i < 500; ++i) {
    keys.push_back("item:" + std::to_string(i));
    REQUIRE(cluster.command_for_key(keys.back(), {"SET", keys.back(), "v" + std::to_string(i)}) ==
            "OK");
  }
  std::vector<std::string> on_from;
  for (const std::string& key : keys) {
    if (&cluster.primary_for(key) == &from) {
      on_from.push_back(key);
    }
  }
  const int from_slots = slots_served_by(cluster, from);
  const int to_slots = slots_served_by(cluster, to);

  cluster.reshard(from, to, 1000);
  CHECK(slots_served_by(cluster, from) == from_slots - 1000);
  CHECK(slots_served_by(cluster, to) == to_slots + 1000);
  std::vector<size_t> moved;  // indexes in `keys`
  for (size_t i = 0; i < keys.size(); ++i) {
    if (&cluster.primary_for(keys[i]) == &to &&
        std::find(on_from.begin(), on_from.end(), keys[i]) != on_from.end()) {
      moved.push_back(i);
      CHECK(to.get(keys[i]) == "v" + std::to_string(i));
      CHECK(from.command({"GET", keys[i]}).rfind("-MOVED ", 0) == 0);
    }
  }
  CHECK(!moved.empty());
  CHECK(moved.size() < on_from.size());
  CHECK(cluster.total_keys() == 500);

  // Back again in the background, reading the moving keys until it is done: every read must
  // find its key, whether before, during (ASK) or after (MOVED) its slot's move.
  cluster.start_reshard(to, from, 1000);
  const auto reads_start = Clock::now();
  int rounds = 0;
  while (slots_served_by(cluster, from) < from_slots && since(reads_start) < 30s) {
    for (const size_t i : moved) {
      CHECK(cluster.get(keys[i]) == "v" + std::to_string(i));
    }
    ++rounds;
  }
  cluster.wait_reshard();
  CHECK(rounds > 1);
  CHECK(slots_served_by(cluster, from) == from_slots);
  CHECK(cluster.total_keys() == 500);
  for (const size_t i : moved) {
    CHECK(&cluster.primary_for(keys[i]) == &from);
    CHECK(from.get(keys[i]) == "v" + std::to_string(i));
  }
  CHECK_THROWS_AS(cluster.wait_reshard(), std::logic_error);
}

TEST_CASE("redis cluster: a half-migrated slot answers ASK until finish_migration") {
  RedisCluster cluster;
  const std::vector<std::string> keys = {"{cart}:1", "{cart}:2", "{cart}:3"};
  const int slot = cluster.key_slot(keys[0]);
  for (const std::string& key : keys) {
    REQUIRE(cluster.command_for_key(key, {"SET", key, "value of " + key}) == "OK");
  }
  RedisServer& from = cluster.primary_for(keys[0]);
  RedisServer* to = nullptr;
  for (RedisServer* primary : cluster.primaries()) {
    if (primary != &from) {
      to = primary;
    }
  }
  REQUIRE(to != nullptr);
  CHECK_THROWS_AS(cluster.begin_migration(slot, from, *to, {"not-in-that-slot"}),
                  std::invalid_argument);

  cluster.begin_migration(slot, from, *to, {keys[0]});
  const std::string ask =
      "-ASK " + std::to_string(slot) + " 127.0.0.1:" + std::to_string(to->port());
  CHECK(from.command({"GET", keys[0]}) == ask);
  CHECK(from.get(keys[1]) == "value of " + keys[1]);  // not moved yet: still served at the source
  CHECK(to->command({"GET", keys[0]}).rfind("-MOVED ", 0) == 0);  // without ASKING
  CHECK(&cluster.primary_for(keys[0]) == &from);
  CHECK(cluster.get(keys[0]) == "value of " + keys[0]);  // follows the ASK
  // A new key of the slot is created on the target, as the source has no such key.
  CHECK(cluster.command_for_key("{cart}:new", {"SET", "{cart}:new", "n"}) == "OK");
  CHECK(to->command({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}) == "2");
  CHECK(from.command({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}) == "2");
  CHECK_THROWS_AS(cluster.start_reshard(from, *to, 1), std::logic_error);

  cluster.finish_migration();
  CHECK(&cluster.primary_for(keys[0]) == to);
  CHECK(from.command({"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}) == "0");
  for (const std::string& key : keys) {
    CHECK(to->get(key) == "value of " + key);
    CHECK(from.command({"GET", key}).rfind("-MOVED " + std::to_string(slot), 0) == 0);
  }
  CHECK(cluster.get("{cart}:new") == "n");
  CHECK(cluster.total_keys() == 4);
  CHECK_THROWS_AS(cluster.finish_migration(), std::logic_error);
}

TEST_CASE("redis cluster: failover and a killed primary promote replicas, data survives") {
  RedisCluster cluster(3, 1, {}, 1000);
  CHECK(cluster.size() == 6);
  const std::vector<RedisServer*> primaries = cluster.primaries();
  REQUIRE(primaries.size() == 3);
  for (RedisServer* primary : primaries) {
    CHECK(cluster.replicas_of(*primary).size() == 1);
  }
  std::vector<std::string> keys;
  for (int i = 0; i < 30; ++i) {
    keys.push_back("user:" + std::to_string(i));
    // WAIT on the connection that wrote: only then does it wait for this write.
    const std::vector<RespReply> replies = cluster.pipeline_for_key(
        keys.back(), {{"SET", keys.back(), "u" + std::to_string(i)}, {"WAIT", "1", "1000"}});
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].render() == "OK");
    CHECK(replies[1].integer == 1);
  }
  const auto all_keys_readable = [&] {
    for (size_t i = 0; i < keys.size(); ++i) {
      CHECK(cluster.get(keys[i]) == "u" + std::to_string(i));
    }
  };

  RedisServer* old_primary = primaries[0];
  RedisServer& promoted = cluster.failover(*old_primary);
  CHECK(&promoted != old_primary);
  CHECK(contains(cluster.primaries(), &promoted));
  CHECK_FALSE(contains(cluster.primaries(), old_primary));
  CHECK(cluster.replicas_of(promoted) == std::vector<RedisServer*>{old_primary});
  CHECK(url_names(cluster.url(), promoted));
  all_keys_readable();

  RedisServer* victim = primaries[1];
  RedisServer& successor = cluster.kill_primary(*victim);
  CHECK_FALSE(victim->running());
  CHECK(&successor != victim);
  const std::vector<RedisServer*> now = cluster.primaries();
  CHECK(now.size() == 3);
  CHECK(contains(now, &successor));
  CHECK_FALSE(contains(now, victim));
  CHECK_FALSE(url_names(cluster.url(), *victim));
  all_keys_readable();
  CHECK(cluster.total_keys() == 30);
  CHECK(cluster.command_for_key("after", {"SET", "after", "failover"}) == "OK");
  CHECK(cluster.get("after") == "failover");
}

}  // namespace cachecar::test
