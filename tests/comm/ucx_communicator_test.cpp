#include <doctest/doctest.h>

#include "comm/tcp_rendezvous.hpp"
#include "comm/ucx_communicator.hpp"
#include "tests/comm/collective_checks.hpp"
#include "tests/comm/multi_rank.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

void check_ucx(int n, const std::vector<int64_t>& sizes) {
  int port = TcpRendezvous::free_port();
  auto outcomes = run_ranks(n, [&](int rank) {
    TcpRendezvous rendezvous("127.0.0.1", port, rank, n, std::chrono::seconds(20));
    UcxCommunicator comm({{"dp", rank, n, std::chrono::seconds(20)}}, rendezvous.bootstrap());
    check_collectives(comm, sizes);
    comm.barrier();  // nobody tears down its endpoints while a peer still receives
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}

}  // namespace

TEST_CASE("ucx collectives match a serial computation at 2 ranks") { check_ucx(2, all_test_sizes()); }
TEST_CASE("ucx collectives match a serial computation at 4 ranks") { check_ucx(4, all_test_sizes()); }
TEST_CASE("ucx collectives with uneven splits and the ring path at 3 ranks") { check_ucx(3, uneven_test_sizes()); }

TEST_CASE("ucx with one rank per thread") {
  // In a child process, so the threads' UCX contexts never live in the process that forks ranks.
  auto outcomes = run_ranks(1, [](int) {
    int port = TcpRendezvous::free_port();
    std::string errors = run_rank_threads(2, [&](int r) {
      TcpRendezvous rendezvous("127.0.0.1", port, r, 2, std::chrono::seconds(20));
      UcxCommunicator comm({{"tp", r, 2, std::chrono::seconds(20)}}, rendezvous.bootstrap());
      check_collectives(comm, {4, 70000});
      comm.barrier();
    });
    if (!errors.empty()) fail("{}", errors);
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}

TEST_CASE("tcp rendezvous names the rank that never connects") {
  int port = TcpRendezvous::free_port();
  CHECK_THROWS_WITH_AS(TcpRendezvous("127.0.0.1", port, 0, 3, std::chrono::milliseconds(200)),
                       doctest::Contains("rank(s) 1, 2 did not connect"), Error);
}
