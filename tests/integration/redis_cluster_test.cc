// Redis Cluster (redis+cluster://): real redis-server nodes with --cluster-enabled on loopback,
// made a cluster by redis-cli --cluster create. cachecar routes each key to its primary, splits
// and joins what spans slots, follows MOVED and ASK while slots move, and goes on without
// Redis (never failing a request) while a primary fails over.

#include "support/redis_cluster.h"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "catalog.h"
#include "harness.h"
#include "load.h"
#include "redis/cluster_slots.h"
#include "support/free_port.h"
#include "support/test_ca.h"

namespace cachecar::test {
namespace {

std::string cluster_yaml(const RedisCluster& cluster, const TestUpstream& upstream,
                         const std::string& extra = "") {
  return "upstream:\n  url: " + upstream.url() + "\nredis:\n  url: " + cluster.url() +
         "\n  connect_timeout: 1s\n  command_timeout: 500ms\n"
         "routes:\n"
         "  - path: /products/{id}\n    key: product:{id}\n    ttl: 60s\n"
         "    invalidate: [products:list]\n"
         "  - path: /products\n    key: products:list\n    ttl: 60s\n    query: [page]\n" +
         extra;
}

// A counter or gauge without labels from /metrics; -1 when it is missing.
long long metric(const Cachecar& cachecar, const std::string& name) {
  const std::string text = http_request(cachecar.admin_port(), "GET", "/metrics").body;
  const size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + name.size() + 2));
}

// /products/0 .. /products/<count - 1> hold `value`.
void set_products(Catalog& catalog, int count, const std::string& value) {
  for (int id = 0; id < count; ++id) {
    catalog.set("/products/" + std::to_string(id), value);
  }
}

// Whether cachecar logs `needle` within `timeout`; when it does not, the check fails with the
// end of its log, so a failure in CI says what cachecar was doing meanwhile.
bool logs_within(Cachecar& cachecar, const std::string& needle, std::chrono::milliseconds timeout) {
  if (cachecar.process().wait_for_output(needle, timeout)) {
    return true;
  }
  const std::string output = cachecar.output();
  FAIL_CHECK("cachecar did not log \"", needle, "\" within ", timeout.count(),
             " ms; its log ends:\n",
             output.substr(output.size() > 6000 ? output.size() - 6000 : 0));
  return false;
}

bool connected_to_every_primary(Cachecar& cachecar, RedisCluster& cluster) {
  for (RedisServer* primary : cluster.primaries()) {
    if (!cachecar.process().wait_for_output(
            "127.0.0.1:" + std::to_string(primary->port()) + "/0 (cluster primary): connected",
            10s)) {
      return false;
    }
  }
  return true;
}

TEST_CASE("redis cluster: keys on every primary are stored, hit and invalidated across slots") {
  RedisCluster cluster(3);
  TestUpstream upstream;
  Catalog catalog(upstream);
  for (int id = 0; id < 30; ++id) {
    catalog.set("/products/" + std::to_string(id), "v" + std::to_string(id));
  }
  catalog.set("/products", "list");
  Cachecar cachecar(cluster_yaml(cluster, upstream));
  REQUIRE(connected_to_every_primary(cachecar, cluster));
  HttpConnection client(cachecar.port());

  std::set<int> primaries_used;
  for (int id = 0; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    const std::string key = "product:" + std::to_string(id);
    CAPTURE(path);
    CHECK(client.request("GET", path).header("X-Cache") == "MISS");
    REQUIRE(eventually([&] { return cluster.get(key).has_value(); }));
    const auto hit = client.request("GET", path);
    CHECK(hit.header("X-Cache") == "HIT");
    CHECK(hit.body == "v" + std::to_string(id));
    primaries_used.insert(cluster.primary_for(key).port());
  }
  CHECK(primaries_used.size() == 3);  // thirty keys leave no primary out

  // Query variants live in their route key's slot ("{products:list}?page=2"), with its guard.
  for (int page = 1; page <= 5; ++page) {
    const std::string path = "/products?page=" + std::to_string(page);
    CAPTURE(path);
    CHECK(client.request("GET", path).header("X-Cache") == "MISS");
    REQUIRE(eventually([&] { return client.request("GET", path).header("X-Cache") == "HIT"; }));
  }
  CHECK(cluster.key_slot("{products:list}?page=1") == cluster.key_slot("products:list"));

  // A PUT invalidates its key and the list with every variant: slots apart, one script each.
  const int list_slot = cluster.key_slot("products:list");
  int other_slot_id = -1;
  for (int id = 0; id < 30 && other_slot_id < 0; ++id) {
    if (&cluster.primary_for("product:" + std::to_string(id)) !=
        &cluster.primary_for("products:list")) {
      other_slot_id = id;
    }
  }
  REQUIRE(other_slot_id >= 0);
  CHECK(cluster.key_slot("product:" + std::to_string(other_slot_id)) != list_slot);
  const std::string path = "/products/" + std::to_string(other_slot_id);
  CHECK(client.request("PUT", path, {}, "changed").status == 200);
  CHECK_FALSE(cluster.get("product:" + std::to_string(other_slot_id)).has_value());
  CHECK_FALSE(cluster.get("products:list").has_value());
  CHECK_FALSE(cluster.get("{products:list}?page=3").has_value());
  const auto fresh = client.request("GET", path);
  CHECK(fresh.header("X-Cache") == "MISS");
  CHECK(fresh.body == "changed");
  CHECK(client.request("GET", "/products?page=3").header("X-Cache") == "MISS");
  CHECK(cachecar.output().find("CROSSSLOT") == std::string::npos);
  CHECK(eventually([&] { return metric(cachecar, "cachecar_redis_errors_total") == 0; }));
}

TEST_CASE("redis cluster: a primary down: its keys go without Redis, the others' still hit") {
  // No replicas, and coverage not required: the other primaries keep serving their slots.
  RedisCluster cluster(3, 0, {"--cluster-require-full-coverage", "no"});
  TestUpstream upstream;
  Catalog catalog(upstream);
  set_products(catalog, 30, "v0");
  Cachecar cachecar(cluster_yaml(cluster, upstream));
  REQUIRE(connected_to_every_primary(cachecar, cluster));
  const std::string servers = "cachecar_redis_servers{worker=\"0\"}";
  const std::string connected = "cachecar_redis_servers_connected{worker=\"0\"}";
  CHECK(eventually([&] { return metric(cachecar, connected) == 3; }));
  CHECK(metric(cachecar, servers) == 3);
  HttpConnection client(cachecar.port());
  std::map<int, int> owner;  // id → port of its primary
  for (int id = 0; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    REQUIRE(eventually([&] { return client.request("GET", path).header("X-Cache") == "HIT"; }));
    owner[id] = cluster.primary_for("product:" + std::to_string(id)).port();
  }
  // Down: the primary of the slot a single server's cache epoch would live in. Each lookup
  // reads the epoch's copy in its own key's slot, so no primary holds the whole cache's.
  RedisServer* down = &cluster.primary_for("cachecar:epoch");
  const int down_port = down->port();
  down->kill();
  CHECK(eventually([&] { return metric(cachecar, connected) == 2; }));
  CHECK(metric(cachecar, servers) == 3);
  int bypassed = 0;
  for (int id = 0; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    const auto response = client.request("GET", path);
    CHECK(response.status == 200);
    CHECK(response.body == "v0");
    CHECK(response.header("X-Cache") == (owner[id] == down_port ? "BYPASS" : "HIT"));
    bypassed += owner[id] == down_port ? 1 : 0;
  }
  CHECK(bypassed > 0);
  CHECK(bypassed < 30);
}

TEST_CASE("redis cluster: the rate limit is exact across two cachecar processes") {
  RedisCluster cluster(3);
  TestUpstream upstream;
  for (const char* algorithm : {"fixed_window", "sliding_window"}) {
    CAPTURE(algorithm);
    cluster.flush_all();
    const std::string limit =
        "rate_limit:\n  limit: 20\n  window: 1m\n  algorithm: " + std::string(algorithm) + "\n";
    Cachecar first(cluster_yaml(cluster, upstream, limit));
    Cachecar second(cluster_yaml(cluster, upstream, limit));
    REQUIRE(connected_to_every_primary(first, cluster));
    REQUIRE(connected_to_every_primary(second, cluster));
    HttpConnection a(first.port());
    HttpConnection b(second.port());
    int allowed = 0;
    int refused = 0;
    for (int i = 0; i < 30; ++i) {
      const auto response = (i % 2 == 0 ? a : b).request("GET", "/products/1");
      allowed += response.status == 200 ? 1 : 0;
      refused += response.status == 429 ? 1 : 0;
      if (response.status == 200) {
        CHECK(response.header("RateLimit-Remaining") == std::to_string(20 - allowed));
      }
    }
    CHECK(allowed == 20);
    CHECK(refused == 10);
  }
  // Scripts flushed from every primary (as a restart does): EVALSHA meets NOSCRIPT, and the
  // call is sent again whole, loading the script back (the counter is the fixed window's).
  for (RedisServer* primary : cluster.primaries()) {
    REQUIRE(primary->command({"SCRIPT", "FLUSH"}) == "OK");
  }
  cluster.flush_all();
  Cachecar third(cluster_yaml(cluster, upstream, "rate_limit:\n  limit: 20\n  window: 1m\n"));
  REQUIRE(connected_to_every_primary(third, cluster));
  for (RedisServer* primary : cluster.primaries()) {
    REQUIRE(primary->command({"SCRIPT", "FLUSH"}) == "OK");
  }
  HttpConnection c(third.port());
  CHECK(c.request("GET", "/products/1").header("RateLimit-Remaining") == "19");
  CHECK(c.request("GET", "/products/1").header("RateLimit-Remaining") == "18");
  CHECK(cluster.get("rl:global:127.0.0.1") == "2");
  CHECK(third.output().find("not loaded on the server; sending it again") != std::string::npos);
}

TEST_CASE("redis cluster: a slot half migrated answers ASK, and cachecar follows it") {
  RedisCluster cluster(3);
  TestUpstream upstream;
  const std::string limit = "rate_limit:\n  limit: 1000\n  window: 1m\n";
  Cachecar cachecar(cluster_yaml(cluster, upstream, limit));
  REQUIRE(connected_to_every_primary(cachecar, cluster));
  HttpConnection client(cachecar.port());
  // The limiter's counter is one key, so a script on it can be sent on (ASK) alone.
  const std::string counter = "rl:global:127.0.0.1";
  CHECK(client.request("GET", "/products/1").header("RateLimit-Remaining") == "999");
  REQUIRE(cluster.get(counter) == "1");
  RedisServer& source = cluster.primary_for(counter);
  RedisServer* target = nullptr;
  for (RedisServer* primary : cluster.primaries()) {
    if (primary != &source) {
      target = primary;
      break;
    }
  }
  REQUIRE(target != nullptr);
  cluster.begin_migration(cluster.key_slot(counter), source, *target, {counter});
  for (int i = 2; i <= 6; ++i) {
    const auto response = client.request("GET", "/products/1");
    CHECK(response.status == 200);
    CHECK(response.header("RateLimit-Remaining") == std::to_string(1000 - i));
  }
  // Metrics are copied from the worker once a second.
  CHECK(eventually([&] { return metric(cachecar, "cachecar_redis_redirections_total") >= 5; }));
  CHECK(cluster.command_for_key(counter, {"GET", counter}) == "6");  // counted where it went
  cluster.finish_migration();
  CHECK(client.request("GET", "/products/1").header("RateLimit-Remaining") == "993");
  CHECK(&cluster.primary_for(counter) == target);
}

TEST_CASE("redis cluster: slots resharded under load: no request fails, no read is stale") {
  RedisCluster cluster(3);
  TestUpstream upstream;
  Catalog catalog(upstream);
  set_products(catalog, 50, "v0");
  Cachecar cachecar(cluster_yaml(cluster, upstream));
  REQUIRE(connected_to_every_primary(cachecar, cluster));
  std::vector<RedisServer*> primaries = cluster.primaries();
  REQUIRE(primaries.size() == 3);
  {
    Load reads(cachecar.port(), 50);
    WriteThenRead writes(cachecar.port(), 50);
    std::this_thread::sleep_for(300ms);
    cluster.reshard(*primaries[0], *primaries[1], 1000);
    cluster.reshard(*primaries[2], *primaries[0], 1000);
    std::this_thread::sleep_for(300ms);
    reads.finish();
    writes.finish();
    CHECK(reads.sent > 100);
    CHECK(reads.failed == 0);
    CHECK(writes.writes > 20);
    CHECK(writes.failed == 0);
    CHECK(writes.stale == 0);
  }
  CHECK(eventually([&] { return metric(cachecar, "cachecar_redis_redirections_total") > 0; }));
  // Caching goes on where the slots went.
  HttpConnection client(cachecar.port());
  for (int id = 0; id < 50; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    CHECK(eventually([&] { return client.request("GET", path).header("X-Cache") == "HIT"; }));
  }
}

TEST_CASE("redis cluster: primaries fail over (manual, then a crash): nothing fails or is stale") {
  RedisCluster cluster(3, 1);
  TestUpstream upstream;
  Catalog catalog(upstream);
  set_products(catalog, 50, "v0");
  // With a near cache, whose tracking follows the primaries as they change.
  Cachecar cachecar(
      cluster_yaml(cluster, upstream, "cache:\n  near: {max_bytes: 1MiB, max_ttl: 60s}\n"));
  REQUIRE(connected_to_every_primary(cachecar, cluster));
  REQUIRE(cachecar.process().wait_for_output("Redis tracks its keys on 3 server(s)", 10s));
  std::vector<RedisServer*> primaries = cluster.primaries();
  REQUIRE(primaries.size() == 3);
  {
    Load reads(cachecar.port(), 50);
    WriteThenRead writes(cachecar.port(), 50);
    std::this_thread::sleep_for(300ms);
    RedisServer& promoted = cluster.failover(*primaries[0]);
    logs_within(cachecar, "replaced by its replica 127.0.0.1:" + std::to_string(promoted.port()),
                10s);
    std::this_thread::sleep_for(300ms);
    RedisServer& took_over = cluster.kill_primary(*primaries[1]);
    logs_within(cachecar, "replaced by its replica 127.0.0.1:" + std::to_string(took_over.port()),
                10s);
    std::this_thread::sleep_for(300ms);
    reads.finish();
    writes.finish();
    CHECK(reads.sent > 100);
    CHECK(reads.failed == 0);  // Redis is a cache: answered from the upstream meanwhile
    CHECK(writes.writes > 20);
    CHECK(writes.failed == 0);
    CHECK(writes.stale == 0);
  }
  // Caching resumes by itself, on every key, the promoted primaries' included.
  HttpConnection client(cachecar.port());
  for (int id = 0; id < 50; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    CHECK(eventually([&] { return client.request("GET", path).header("X-Cache") == "HIT"; }, 5s));
  }
}

TEST_CASE("redis cluster: an idle cachecar learns of a crashed primary's replica within seconds") {
  // With no traffic nothing is answered MOVED or CLUSTERDOWN: only reading the map again names
  // the replacement. An unsettled map (a primary out of reach) is read every 250 ms, not at
  // the settled pace of 5 s.
  RedisCluster cluster(3, 1);
  TestUpstream upstream;
  Cachecar cachecar(cluster_yaml(cluster, upstream));
  REQUIRE(connected_to_every_primary(cachecar, cluster));
  std::vector<RedisServer*> primaries = cluster.primaries();
  REQUIRE(primaries.size() == 3);
  const auto killed_at = std::chrono::steady_clock::now();
  RedisServer& took_over = cluster.kill_primary(*primaries[2]);
  const auto promoted_after = std::chrono::steady_clock::now() - killed_at;
  CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(promoted_after).count());
  logs_within(cachecar, "replaced by its replica 127.0.0.1:" + std::to_string(took_over.port()),
              2500ms);
  // Caching goes on in the promoted primary's slots.
  HttpConnection client(cachecar.port());
  for (int id = 0; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    CHECK(eventually([&] { return client.request("GET", path).header("X-Cache") == "HIT"; }, 5s));
  }
}

long long total_calls(RedisCluster& cluster, const std::string& command) {
  long long calls = 0;
  for (RedisServer* primary : cluster.primaries()) {
    calls += primary->command_calls(command);
  }
  return calls;
}

TEST_CASE("redis cluster: the cache epoch lives in every slot: one MGET a hit, every copy bumped") {
  RedisCluster cluster(3);
  TestUpstream upstream;
  Catalog catalog(upstream);
  set_products(catalog, 30, "v0");
  const std::string journal = "cache:\n  invalidation_journal:\n    max_keys: 2\n";
  Cachecar a(cluster_yaml(cluster, upstream, journal));
  Cachecar b(cluster_yaml(cluster, upstream, journal));
  REQUIRE(connected_to_every_primary(a, cluster));
  REQUIRE(connected_to_every_primary(b, cluster));
  HttpConnection reads(b.port());
  std::set<int> primaries_used;
  for (int id = 10; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    REQUIRE(eventually([&] { return reads.request("GET", path).header("X-Cache") == "HIT"; }));
    primaries_used.insert(cluster.primary_for("product:" + std::to_string(id)).port());
    // The entry, its guard and the epoch in one MGET to one primary, and nothing else read.
    const long long mgets = total_calls(cluster, "mget");
    const long long gets = total_calls(cluster, "get");
    CHECK(reads.request("GET", path).header("X-Cache") == "HIT");
    CHECK(total_calls(cluster, "mget") == mgets + 1);
    CHECK(total_calls(cluster, "get") == gets);
  }
  CHECK(primaries_used.size() == 3);

  // Redis refuses every script on every primary: invalidations, and then the epoch bump.
  for (RedisServer* primary : cluster.primaries()) {
    REQUIRE(primary->command({"ACL", "SETUSER", "default", "-@scripting"}) == "OK");
  }
  HttpConnection writes(a.port());
  for (int id = 0; id < 3; ++id) {
    CHECK(writes.request("PUT", "/products/" + std::to_string(id), {}, "v1").status == 200);
  }
  CHECK(a.process().wait_for_output("the journal is full", 5s));
  for (RedisServer* primary : cluster.primaries()) {
    REQUIRE(primary->command({"ACL", "SETUSER", "default", "+@all"}) == "OK");
  }
  CHECK(a.process().wait_for_output("cache epoch bumped", 10s));

  // Every slot's copy moved, on the primary that serves it.
  size_t copies = 0;
  for (RedisServer* primary : cluster.primaries()) {
    const RespReply keys = primary->command_reply({"KEYS", "cachecar:epoch{*}"});
    REQUIRE(keys.type == RespReply::Type::Array);
    copies += keys.elements.size();
    REQUIRE_FALSE(keys.elements.empty());
    CHECK(primary->get(keys.elements.front().text) == "1");
    CHECK(primary->get(keys.elements.back().text) == "1");
  }
  CHECK(copies == kClusterSlots);
  CHECK(cluster.get("cachecar:epoch") == "1");  // for cachecars that read no copy

  // B, which never lost Redis, serves nothing stored before the bump, on any primary, stores
  // it again under the new epoch and serves that.
  for (int id = 10; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    CHECK(reads.request("GET", path).header("X-Cache") == "MISS");
    CHECK(eventually([&] { return reads.request("GET", path).header("X-Cache") == "HIT"; }));
  }
  // The writes the journal gave up naming are fresh everywhere.
  for (int id = 0; id < 3; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CHECK(reads.request("GET", path).body == "v1");
    CHECK(writes.request("GET", path).body == "v1");
  }
  CHECK(a.output().find("CROSSSLOT") == std::string::npos);
}

TEST_CASE("redis cluster: the near cache is tracked on every primary") {
  RedisCluster cluster(3);
  TestUpstream upstream;
  Catalog catalog(upstream);
  set_products(catalog, 30, "v0");
  const std::string near = "cache:\n  near: {max_bytes: 1MiB, max_ttl: 60s}\n";
  Cachecar writer(cluster_yaml(cluster, upstream, near));
  Cachecar reader(cluster_yaml(cluster, upstream, near));
  for (Cachecar* cachecar : {&writer, &reader}) {
    REQUIRE(cachecar->process().wait_for_output("Redis tracks its keys on 3 server(s)", 10s));
  }
  HttpConnection reads(reader.port());
  for (int id = 0; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    // A hit that costs no MGET on any primary came from the reader's near cache.
    CHECK(eventually([&] {
      const long long mgets = total_calls(cluster, "mget");
      const auto response = reads.request("GET", path);
      return response.header("X-Cache") == "HIT" && total_calls(cluster, "mget") == mgets;
    }));
  }
  // Writes through the other replica reach the reader's near cache through whichever primary
  // holds each key; without that primary's announcement the old value would stay 60 s.
  HttpConnection writes(writer.port());
  for (int id = 0; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    REQUIRE(writes.request("PUT", path, {}, "v1").status == 200);
    CHECK(eventually([&] { return reads.request("GET", path).body == "v1"; }, 1s));
  }
}

TEST_CASE("redis cluster: purges by key, tag and prefix reach every primary") {
  RedisCluster cluster(3);
  TestUpstream upstream;
  std::atomic<int> answers{0};
  upstream.set_handler([&answers](const ReceivedRequest& request) {
    UpstreamReply reply;
    const std::string id = request.target.substr(request.target.rfind('/') + 1);
    reply.headers = {{"Surrogate-Key", "p" + id + " catalog"}};
    reply.body = request.target + " answer " + std::to_string(++answers);
    return reply;
  });
  Cachecar cachecar(cluster_yaml(cluster, upstream));
  REQUIRE(connected_to_every_primary(cachecar, cluster));
  std::set<int> primaries_used;
  for (int id = 0; id < 30; ++id) {
    const std::string key = "product:" + std::to_string(id);
    CHECK(
        http_request(cachecar.port(), "GET", "/products/" + std::to_string(id)).header("X-Cache") ==
        "MISS");
    REQUIRE(eventually([&] { return cluster.get(key).has_value(); }));
    primaries_used.insert(cluster.primary_for(key).port());
  }
  CHECK(primaries_used.size() == 3);
  const auto purge = [&](const std::string& json) {
    return http_request(cachecar.admin_port(), "POST", "/purge",
                        {{"Content-Type", "application/json"}}, json)
        .body;
  };
  const auto products_left = [&] {
    int left = 0;
    for (int id = 0; id < 30; ++id) {
      left += cluster.get("product:" + std::to_string(id)).has_value() ? 1 : 0;
    }
    return left;
  };

  // By key and by tag: deletes in each key's slot; the tag's set in the tag's own.
  CHECK(purge(R"({"keys":["product:0"],"tags":["p1"]})").find(R"("deleted":2)") !=
        std::string::npos);
  CHECK(products_left() == 28);
  // By prefix, softly: every primary's keys are walked; product:1 is gone already.
  const std::string soft = purge(R"({"prefix":"product:1","soft":true})");
  CHECK(soft.find(R"("marked":10)") != std::string::npos);
  CHECK(soft.find(R"("complete":true)") != std::string::npos);
  std::set<int> marked_on;
  for (int id = 10; id < 20; ++id) {
    const std::string key = "product:" + std::to_string(id);
    CHECK(cluster.get(key).value_or("").substr(0, 4) == "CCS1");
    marked_on.insert(cluster.primary_for(key).port());
  }
  CHECK(marked_on.size() > 1);
  CHECK(cluster.get("product:2").value_or("").substr(0, 4) == "CCE1");
  CHECK(http_request(cachecar.port(), "GET", "/products/12").header("X-Cache") == "MISS");
  // By prefix: everything left, from all three primaries.
  CHECK(purge(R"({"prefix":"product:"})").find(R"("named":28)") != std::string::npos);
  CHECK(products_left() == 0);
  CHECK(http_request(cachecar.port(), "GET", "/products/2").header("X-Cache") == "MISS");
}

TEST_CASE("redis cluster: over TLS (rediss+cluster://), every primary verified by the CA") {
  TestCa ca;
  const IssuedCertificate certificate = ca.issue_server("cluster", {"localhost"}, {"127.0.0.1"});
  // Nodes always ask each other for a client certificate on the cluster bus.
  const IssuedCertificate bus_client = ca.issue_client("cluster-bus", "cluster node");
  std::map<size_t, int> tls_ports;
  // Each node also keeps its plain port, for the test's own commands; the cluster bus and
  // replication are TLS, so the nodes announce their TLS ports.
  RedisCluster cluster(
      3, 0,
      {"--tls-cert-file", certificate.cert_file, "--tls-key-file", certificate.key_file,
       "--tls-client-cert-file", bus_client.cert_file, "--tls-client-key-file", bus_client.key_file,
       "--tls-ca-cert-file", ca.cert_file(), "--tls-auth-clients", "no", "--tls-cluster", "yes",
       "--tls-replication", "yes"},
      1000, [&tls_ports](size_t node) {
        tls_ports[node] = free_tcp_port();
        return std::vector<std::string>{"--tls-port", std::to_string(tls_ports[node])};
      });
  TestUpstream upstream;
  Catalog catalog(upstream);
  set_products(catalog, 30, "v0");
  auto yaml = [&](const std::string& ca_file) {
    return "upstream:\n  url: " + upstream.url() +
           "\nredis:\n  url: rediss+cluster://localhost:" + std::to_string(tls_ports.at(0)) +
           "\n  connect_timeout: 2s\n  tls:\n    ca_file: " + ca_file +
           "\n  command_timeout: 500ms\n"
           "cache:\n  near: {max_bytes: 1MiB, max_ttl: 60s}\n"
           "routes:\n  - path: /products/{id}\n    key: product:{id}\n    ttl: 60s\n";
  };
  Cachecar cachecar(yaml(ca.cert_file()));
  // The seed is verified by name (localhost), the primaries the map names by address.
  REQUIRE(cachecar.process().wait_for_output("Redis tracks its keys on 3 server(s)", 10s));
  HttpConnection client(cachecar.port());
  std::set<int> primaries_used;
  for (int id = 0; id < 30; ++id) {
    const std::string path = "/products/" + std::to_string(id);
    CAPTURE(path);
    CHECK(client.request("GET", path).header("X-Cache") == "MISS");
    CHECK(eventually([&] { return client.request("GET", path).header("X-Cache") == "HIT"; }));
    primaries_used.insert(cluster.primary_for("product:" + std::to_string(id)).port());
  }
  CHECK(primaries_used.size() == 3);
  CHECK(client.request("PUT", "/products/7", {}, "v1").status == 200);
  CHECK(client.request("GET", "/products/7").body == "v1");
  CHECK(cachecar.output().find("rediss://127.0.0.1:" + std::to_string(tls_ports.at(1))) !=
        std::string::npos);

  // A CA that signed none of them: refused and logged, and requests go on without Redis.
  TestCa other("another CA");
  Cachecar refused(yaml(other.cert_file()));
  CHECK(refused.process().wait_for_output("certificate verify failed", 5s));
  CHECK(http_request(refused.port(), "GET", "/products/1").status == 200);
}

TEST_CASE("redis cluster: no seed answering is a Redis fault like any other") {
  TestUpstream upstream;
  RedisServer lone;  // not a cluster node: CLUSTER SHARDS is refused
  Cachecar cachecar("upstream:\n  url: " + upstream.url() +
                    "\nredis:\n  url: redis+cluster://127.0.0.1:" + std::to_string(lone.port()) +
                    "\n");
  CHECK(cachecar.process().wait_for_output("gave no usable slot map", 5s));
  CHECK(http_request(cachecar.port(), "GET", "/anything").status == 200);
}

}  // namespace
}  // namespace cachecar::test
