// A rank killed in the middle of a collective or a pipeline transfer: the survivors must fail
// with an error naming the group, the op and a missing rank within the (short) timeout, never hang.
#include <doctest/doctest.h>

#include <signal.h>

#include "comm/comm_timeout.hpp"
#include "comm/shm_communicator.hpp"
#include "comm/tcp_rendezvous.hpp"
#include "comm/ucx_communicator.hpp"
#include "comm/ucx_p2p_transport.hpp"
#include "kernels/error.hpp"
#include "tests/comm/multi_rank.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

constexpr auto kTimeout = std::chrono::milliseconds(500);
constexpr int kVictim = 2;

// Two all_reduces succeed; then the victim starts a large (chunked, multi-step) all_reduce on
// its async worker and kills itself while that collective is running.
void run_and_kill(DeviceCommunicator& comm, int rank) {
  Tensor small = Tensor::zeros({256}, DType::F32);
  comm.all_reduce(small);
  comm.all_reduce(small);
  Tensor big = Tensor::zeros({4 << 20}, DType::F32);
  if (rank == kVictim) {
    CommHandle h = comm.all_reduce_async(big);
    raise(SIGKILL);
  }
  comm.all_reduce(big);
  fail("rank {} completed an all_reduce although rank {} was killed", rank, kVictim);
}

void expect_clean_failures(const std::vector<RankOutcome>& outcomes, const std::string& group, bool all_name_victim) {
  REQUIRE(outcomes[kVictim].signal == SIGKILL);
  bool someone_named_victim = false;
  for (int r = 0; r < int(outcomes.size()); ++r) {
    if (r == kVictim) continue;
    const auto& o = outcomes[size_t(r)];
    INFO("rank " << r << ": " << o.error);
    CHECK_FALSE(o.ok);
    CHECK(o.error.find("group '" + group + "' all_reduce") != std::string::npos);
    CHECK(o.error.find("rank ") != std::string::npos);
    CHECK(o.error.find("killed by run_ranks") == std::string::npos);
    CHECK(o.seconds < 10.0);  // the timeout is 0.5 s; generous for a loaded 2-core CI host
    bool named = o.error.find("rank " + std::to_string(kVictim)) != std::string::npos;
    if (all_name_victim) CHECK(named);
    someone_named_victim = someone_named_victim || named;
  }
  CHECK(someone_named_victim);
}

}  // namespace

TEST_CASE("shm: killing a rank mid-collective fails the others in time") {
  std::string segment = unique_name("shm-dead");
  auto outcomes = run_ranks(
      3,
      [&](int rank) {
        ShmCommunicator comm({{"tp", rank, 3, kTimeout}, segment});
        run_and_kill(comm, rank);
      },
      std::chrono::seconds(30));
  // Every survivor waits on all ranks, so each one names the dead rank.
  expect_clean_failures(outcomes, "tp", true);
}

TEST_CASE("ucx: killing a rank mid-collective fails the others in time") {
  // Without peer error handling the wait times out; with it UCX reports the broken connection.
  for (bool detect : {false, true}) {
    CAPTURE(detect);
    int port = TcpRendezvous::free_port();
    auto outcomes = run_ranks(
        3,
        [&](int rank) {
          TcpRendezvous rendezvous("127.0.0.1", port, rank, 3, std::chrono::seconds(20));
          UcxCommunicator comm({{"dp", rank, 3, kTimeout}, 64 << 10, detect}, rendezvous.bootstrap());
          run_and_kill(comm, rank);
        },
        std::chrono::seconds(30));
    // In a ring a survivor may be waiting on another survivor that already gave up, so only one
    // error is guaranteed to name the dead rank; all of them must name the group and the op.
    expect_clean_failures(outcomes, "dp", false);
  }
}

TEST_CASE("p2p: a receive from a dead stage fails naming it") {
  int port = TcpRendezvous::free_port();
  auto outcomes = run_ranks(
      2,
      [&](int rank) {
        TcpRendezvous rendezvous("127.0.0.1", port, rank, 2, std::chrono::seconds(20));
        UcxP2PTransport p2p({"pp", rank, 2, kTimeout}, rendezvous.bootstrap());
        rendezvous.all_gather("connected");
        if (rank == 0) raise(SIGKILL);
        p2p.recv(0);
      },
      std::chrono::seconds(30));
  REQUIRE(outcomes[0].signal == SIGKILL);
  CHECK_FALSE(outcomes[1].ok);
  CHECK(outcomes[1].error.find("p2p 'pp' recv") != std::string::npos);
  CHECK(outcomes[1].error.find("rank 0") != std::string::npos);
  CHECK(outcomes[1].seconds < 10.0);
}

TEST_CASE("the default comm timeout is configurable through the environment") {
  setenv("TROUPE_COMM_TIMEOUT_MS", "1234", 1);
  CHECK(default_comm_timeout() == std::chrono::milliseconds(1234));
  setenv("TROUPE_COMM_TIMEOUT_MS", "soon", 1);
  CHECK_THROWS_WITH_AS(default_comm_timeout(), doctest::Contains("not a positive number"), Error);
  unsetenv("TROUPE_COMM_TIMEOUT_MS");
  CHECK(default_comm_timeout() == std::chrono::milliseconds(60000));
}

TEST_CASE("a live rank that never joins the collective is reported after the timeout") {
  // Rank 0 enters an all_reduce that rank 1 never joins; rank 1 waits for a message rank 0 never
  // sends. Both are alive, so only the timeout can end the waits.
  auto mismatched = [](DeviceCommunicator& comm, int rank) {
    Tensor t = Tensor::zeros({8}, DType::F32);
    if (rank == 0)
      comm.all_reduce(t);
    else
      comm.recv(t, 0);
  };
  auto check = [](const std::vector<RankOutcome>& o, const std::string& group) {
    INFO(failures(o));
    // The first to time out exits, so the other may instead see it gone; both name op and peer.
    CHECK(o[0].error.find("group '" + group + "' all_reduce: rank 1 ") != std::string::npos);
    CHECK(o[1].error.find("group '" + group + "' recv: rank 0 ") != std::string::npos);
    CHECK((o[0].error + o[1].error).find("within 300 ms") != std::string::npos);
    CHECK(o[0].seconds < 10.0);
  };
  constexpr auto kShort = std::chrono::milliseconds(300);
  std::string segment = unique_name("shm-stuck");
  check(run_ranks(
            2,
            [&](int rank) {
              ShmCommunicator comm({{"tp", rank, 2, kShort}, segment});
              mismatched(comm, rank);
            },
            std::chrono::seconds(30)),
        "tp");
  int port = TcpRendezvous::free_port();
  check(run_ranks(
            2,
            [&](int rank) {
              TcpRendezvous rendezvous("127.0.0.1", port, rank, 2, std::chrono::seconds(20));
              UcxCommunicator comm({{"dp", rank, 2, kShort}}, rendezvous.bootstrap());
              mismatched(comm, rank);
            },
            std::chrono::seconds(30)),
        "dp");
}
