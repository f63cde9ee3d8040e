// The OpenAI wire format without a server: the hot-path chunk formatter against the JSON builder.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "serve/openai_protocol.hpp"

using namespace troupe::serve;

TEST_CASE("the per-token chunk formatter prints what the JSON builder prints") {
  for (Endpoint endpoint : {Endpoint::Completion, Endpoint::Chat}) {
    ResponseHeader h{endpoint, "cmpl-1", 1700000000, "m\"odel"};
    for (bool usage : {false, true}) {
      TokenChunkFormatter f(h, usage);
      for (std::string text : {std::string("plain"), std::string("q\"b\\s\n\t\x01"), std::string("é ✓"),
                               std::string("\xff\xfe bad utf-8"), std::string()}) {
        CAPTURE(text);
        const int32_t id = 4711;
        std::vector<int32_t> ids{id};
        CHECK(f.format(text, nullptr) == token_chunk(h, text, nullptr, nullptr, usage));
        CHECK(f.format(text, &id) == token_chunk(h, text, &ids, nullptr, usage));
      }
    }
  }
}
