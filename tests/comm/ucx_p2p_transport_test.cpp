#include <doctest/doctest.h>

#include <cstring>

#include "comm/tcp_rendezvous.hpp"
#include "comm/ucx_p2p_transport.hpp"
#include "tests/comm/collective_checks.hpp"
#include "tests/comm/multi_rank.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

// A stage's output as the next stage expects it: three tensors of different dtypes and shapes,
// one of them large enough for UCX's rendezvous protocol.
IntermediateTensors stage_output(int stage, int64_t big_elements) {
  IntermediateTensors t;
  t.set("hidden_states", make_tensor({3, 5}, DType::F32, [&](int64_t i) { return rank_value(stage, i); }));
  t.set("residual", make_tensor({3, 5}, DType::BF16, [&](int64_t i) { return rank_value(stage + 7, i); }));
  t.set("big", make_tensor({big_elements}, DType::F16, [&](int64_t i) { return rank_value(stage + 3, i); }));
  return t;
}

void expect_stage_output(const IntermediateTensors& got, int stage, int64_t big_elements) {
  IntermediateTensors want = stage_output(stage, big_elements);
  if (got.size() != want.size()) fail("received {} tensors, expected {}", got.size(), want.size());
  auto g = got.begin();
  for (const auto& [name, tensor] : want) {
    if (g->first != name) fail("tensor '{}' arrived where '{}' was expected (order must be kept)", g->first, name);
    if (g->second.shape() != tensor.shape() || g->second.dtype() != tensor.dtype())
      fail("'{}' arrived as {}, expected {}", name, g->second.describe(), tensor.describe());
    expect_values(
        g->second, tensor.numel(), [&](int64_t i) { return element(tensor, i); }, "p2p " + name);
    ++g;
  }
}

}  // namespace

TEST_CASE("intermediate tensors keep insertion order and round-trip their header") {
  IntermediateTensors t{{"b", Tensor::zeros({2}, DType::F32)}, {"a", Tensor::zeros({1, 3}, DType::BF16)}};
  t.set("b", Tensor::zeros({4}, DType::F16));  // replaces in place
  IntermediateTensors back = IntermediateTensors::allocate_from_header(t.encode_header());
  REQUIRE(back.size() == 2);
  CHECK(back.begin()->first == "b");
  CHECK(back.at("b").describe() == "f16[4]");
  CHECK(back.at("a").describe() == "bf16[1, 3]");
  CHECK_THROWS_WITH_AS(back.at("c"), doctest::Contains("no 'c' (present: b, a)"), Error);
  CHECK_THROWS_AS(IntermediateTensors::allocate_from_header("junk"), Error);
}

TEST_CASE("a peer's intermediate tensors header cannot ask for negative, overflowing or huge tensors") {
  // The header of one f32 tensor "h" of shape [2, 3]; dims are patched below as a hostile peer would.
  const std::string good = IntermediateTensors{{"h", Tensor::zeros({2, 3}, DType::F32)}}.encode_header();
  const size_t first_dim = good.size() - 2 * sizeof(int64_t);
  auto with_dims = [&](int64_t a, int64_t b) {
    std::string h = good;
    std::memcpy(h.data() + first_dim, &a, 8);
    std::memcpy(h.data() + first_dim + 8, &b, 8);
    return h;
  };
  CHECK(IntermediateTensors::allocate_from_header(with_dims(4, 5)).at("h").describe() == "f32[4, 5]");
  for (auto [a, b] :
       {std::pair<int64_t, int64_t>{-1, 3}, {1ll << 62, 4}, {1ll << 40, 1ll << 40}, {1ll << 20, 1ll << 20}})
    CHECK_THROWS_WITH_AS(IntermediateTensors::allocate_from_header(with_dims(a, b)), doctest::Contains("refused"),
                         Error);
}

TEST_CASE("p2p passes intermediate tensors down a 4-stage pipeline and back") {
  const int n = 4;
  const int64_t big = (4 << 20) + 3;  // ~8 MiB of f16
  int port = TcpRendezvous::free_port();
  auto outcomes = run_ranks(n, [&](int rank) {
    TcpRendezvous rendezvous("127.0.0.1", port, rank, n, std::chrono::seconds(20));
    UcxP2PTransport p2p({"pp", rank, n, std::chrono::seconds(20)}, rendezvous.bootstrap());
    for (int micro_batch = 0; micro_batch < 3; ++micro_batch) {
      // Post the receive before sending so every stage's receive is in flight while it works.
      P2PRecvHandle incoming = p2p.recv_async((rank + n - 1) % n);
      if (rank == 0) p2p.send(stage_output(micro_batch, big), 1);
      IntermediateTensors got = incoming.wait();
      int stage = rank == 0 ? micro_batch + n - 1 : micro_batch + rank - 1;
      expect_stage_output(got, stage, big);
      if (rank != 0) p2p.send(stage_output(stage + 1, big), (rank + 1) % n);
    }
    rendezvous.all_gather("done");  // nobody closes endpoints while a peer still receives
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}

TEST_CASE("p2p rejects bad peers") {
  // In a child: UCX state (its async thread) should not live in the process that forks the ranks.
  auto outcomes = run_ranks(1, [](int) {
    TcpRendezvous rendezvous("127.0.0.1", TcpRendezvous::free_port(), 0, 1, std::chrono::seconds(5));
    UcxP2PTransport p2p({"pp", 0, 1, std::chrono::seconds(5)}, rendezvous.bootstrap());
    std::string errors;
    try {
      p2p.recv_async(0);
    } catch (const Error& e) {
      errors += e.what();
    }
    try {
      p2p.send_async({}, 3);
    } catch (const Error& e) {
      errors += e.what();
    }
    if (errors.find("p2p 'pp' recv: peer rank 0 is not another rank") == std::string::npos ||
        errors.find("p2p 'pp' send: peer rank 3") == std::string::npos)
      fail("unexpected errors: {}", errors);
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}

TEST_CASE("p2p refuses a message from another run, and UCX stays on the transports it is given") {
  // Rank 1 belongs to another run (another nonce): rank 0 refuses what it sends, naming both runs.
  // Both use shared memory only, as a one-host cluster does; a transport UCX does not know fails
  // at once, naming the setting.
  int port = TcpRendezvous::free_port();
  auto outcomes = run_ranks(2, [&](int rank) {
    TcpRendezvous rendezvous("127.0.0.1", port, rank, 2, std::chrono::seconds(20));
    P2POptions options{"pp", rank, 2, std::chrono::seconds(20)};
    options.resources = {"sm,self", ""};
    options.run_nonce = rank == 0 ? 0x1111222233334444ull : 0x9999888877776666ull;
    UcxP2PTransport p2p(options, rendezvous.bootstrap());
    if (rank == 1) {
      p2p.send(stage_output(0, 16), 0);
    } else {
      std::string error;
      try {
        p2p.recv(1);
      } catch (const Error& e) {
        error = e.what();
      }
      if (error.find("belongs to run 9999888877776666, not this run 1111222233334444") == std::string::npos)
        fail("expected the foreign message refused, got: '{}'", error);
      try {
        UcxWorker bad("p2p 'bad'", 0, 1, false, false, false, {"no-such-transport", ""});
        fail("a worker with an unknown transport was created");
      } catch (const Error& e) {
        if (std::string(e.what()).find("no-such-transport") == std::string::npos) throw;
      }
    }
    rendezvous.all_gather("done");
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}
