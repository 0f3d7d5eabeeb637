// redis/batch.h: one request's Redis batch, and each stage's slice of the replies.

#include "redis/batch.h"

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unit_support.h"

namespace cachecar {
namespace {

// A bulk-string reply per text, in order: what the batch's call would answer.
std::vector<RedisReplyPtr> replies_of(const std::vector<std::string>& texts) {
  std::vector<RedisReplyPtr> replies;
  for (const std::string& text : texts) {
    replies.push_back(reply_of("$" + std::to_string(text.size()) + "\r\n" + text + "\r\n"));
  }
  return replies;
}

RedisCommand get(std::string key) {
  RedisCommand command;
  command.args = {"GET", std::move(key)};
  return command;
}

std::vector<std::string> texts(StageReplies replies) {
  std::vector<std::string> out;
  for (const RedisReplyPtr& reply : replies) {
    out.emplace_back(reply_text(reply.get()));
  }
  return out;
}

using Texts = std::vector<std::string>;

TEST_CASE("RedisBatch::add gives each stage the slice of its commands") {
  RedisBatch batch;
  CHECK(batch.empty());
  const ReplySlice first = batch.add({get("a")});
  const ReplySlice none = batch.add({});
  const ReplySlice third = batch.add({get("b"), get("c")});
  CHECK(first.first == 0);
  CHECK(first.count == 1);
  CHECK(none.count == 0);
  CHECK(third.first == 1);
  CHECK(third.count == 2);
  CHECK_FALSE(batch.empty());

  const std::vector<RedisCommand> commands = batch.take();
  REQUIRE(commands.size() == 3);
  CHECK(commands[0].args == Texts{"GET", "a"});
  CHECK(commands[1].args == Texts{"GET", "b"});
  CHECK(commands[2].args == Texts{"GET", "c"});
  // take() empties the batch.
  CHECK(batch.empty());
  CHECK(batch.take().empty());
}

TEST_CASE("replies_for: each stage reads its own replies") {
  RedisBatch batch;
  const ReplySlice one = batch.add({get("a")});
  const ReplySlice zero = batch.add({});
  const ReplySlice two = batch.add({get("b"), get("c")});
  REQUIRE(batch.take().size() == 3);

  const std::vector<RedisReplyPtr> replies = replies_of({"A", "B", "C"});
  CHECK(texts(replies_for(replies, one)) == Texts{"A"});
  CHECK(replies_for(replies, zero).empty());
  CHECK(texts(replies_for(replies, two)) == Texts{"B", "C"});
  // The spans view the replies themselves, not copies.
  CHECK(replies_for(replies, one).data() == &replies[0]);
  CHECK(replies_for(replies, two).data() == &replies[1]);
}

TEST_CASE("replies_for: a stage added first or last is not shifted by the others") {
  struct Case {
    std::vector<size_t> counts;  // commands each stage adds, in order
  };
  const Case cases[] = {{{1}}, {{2, 1}}, {{0, 1, 2}}, {{2, 0, 1}}, {{1, 2, 0}}, {{0, 0, 3}}};
  for (const Case& c : cases) {
    RedisBatch batch;
    std::vector<ReplySlice> slices;
    std::vector<Texts> expected;
    std::vector<std::string> all;
    for (size_t stage = 0; stage < c.counts.size(); ++stage) {
      std::vector<RedisCommand> commands;
      Texts own;
      for (size_t i = 0; i < c.counts[stage]; ++i) {
        const std::string text = std::to_string(stage) + "." + std::to_string(i);
        commands.push_back(get(text));
        own.push_back(text);
        all.push_back(text);
      }
      slices.push_back(batch.add(std::move(commands)));
      expected.push_back(own);
    }
    REQUIRE(batch.take().size() == all.size());
    const std::vector<RedisReplyPtr> replies = replies_of(all);
    for (size_t stage = 0; stage < slices.size(); ++stage) {
      CAPTURE(stage);
      CHECK(texts(replies_for(replies, slices[stage])) == expected[stage]);
    }
  }
}

TEST_CASE("replies_for: a failed call gives every stage an empty span") {
  RedisBatch batch;
  const ReplySlice slices[] = {batch.add({get("a")}), batch.add({}),
                               batch.add({get("b"), get("c")})};
  REQUIRE(batch.take().size() == 3);
  const std::vector<RedisReplyPtr> failed;
  for (const ReplySlice& slice : slices) {
    CAPTURE(slice.first);
    CHECK(replies_for(failed, slice).empty());
  }
  // Too few replies for a slice (never a partial one).
  const std::vector<RedisReplyPtr> short_replies = replies_of({"A", "B"});
  CHECK(texts(replies_for(short_replies, slices[0])) == Texts{"A"});
  CHECK(replies_for(short_replies, slices[2]).empty());
}

}  // namespace
}  // namespace cachecar
