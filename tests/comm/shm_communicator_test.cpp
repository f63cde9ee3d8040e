#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "comm/intermediate_p2p.hpp"
#include "comm/shm_communicator.hpp"
#include "kernels/error.hpp"
#include "tests/comm/collective_checks.hpp"
#include "tests/comm/multi_rank.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

std::unique_ptr<ShmCommunicator> make_shm(const std::string& segment, int rank, int n, int timeout_ms = 20000) {
  return std::make_unique<ShmCommunicator>(ShmOptions{{"tp", rank, n, std::chrono::milliseconds(timeout_ms)}, segment});
}

void check_shm(int n, const std::vector<int64_t>& sizes) {
  std::string segment = unique_name("shm");
  auto outcomes = run_ranks(n, [&](int rank) {
    auto comm = make_shm(segment, rank, n);
    check_collectives(*comm, sizes);
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}

}  // namespace

TEST_CASE("shm collectives match a serial computation at 2 ranks") { check_shm(2, all_test_sizes()); }
TEST_CASE("shm collectives match a serial computation at 4 ranks") { check_shm(4, all_test_sizes()); }
TEST_CASE("shm collectives with uneven splits at 3 ranks") { check_shm(3, uneven_test_sizes()); }

TEST_CASE("shm works between threads of one process") {
  std::string segment = unique_name("shm-threads");
  std::string errors = run_rank_threads(2, [&](int r) {
    auto comm = make_shm(segment, r, 2);
    check_collectives(*comm, {4, 4100});
  });
  CHECK_MESSAGE(errors.empty(), errors);
}

TEST_CASE("shm rejects bad arguments with clear errors") {
  std::string segment = unique_name("shm-args");
  auto comm = make_shm(segment, 0, 1);
  Tensor t = Tensor::zeros({4}, DType::F32);
  Tensor wrong = Tensor::zeros({3}, DType::F32);
  CHECK_THROWS_WITH_AS(comm->all_gather(t, wrong), doctest::Contains("group 'tp' all_gather"), Error);
  CHECK_THROWS_WITH_AS(comm->broadcast(t, 2), doctest::Contains("root rank 2 is outside the group of size 1"), Error);
  Tensor ints = Tensor::zeros({4}, DType::I32);
  CHECK_THROWS_WITH_AS(comm->all_reduce(ints), doctest::Contains("dtype i32 cannot be reduced"), Error);
  comm->all_reduce(t);  // a group of one is its own result
  CHECK(t.to_floats() == std::vector<float>(4, 0.0f));
}

TEST_CASE("shm reports a rank that never attaches") {
  std::string segment = unique_name("shm-missing");
  auto outcomes = run_ranks(1, [&](int) { make_shm(segment, 0, 3, 300); });
  REQUIRE_FALSE(outcomes[0].ok);
  CHECK(outcomes[0].error.find("rank(s) 1, 2 did not attach") != std::string::npos);
  CHECK(outcomes[0].error.find("group 'tp'") != std::string::npos);
}

TEST_CASE("shm send/recv: messages of different sizes in a row, and a size mismatch") {
  std::string segment = unique_name("shm-p2p");
  auto outcomes = run_ranks(2, [&](int rank) {
    auto comm = make_shm(segment, rank, 2, 5000);
    std::vector<int64_t> sizes{4, 300000, 1, 70000};  // 300000 floats span several mailbox chunks
    if (rank == 0) {
      std::vector<CommHandle> sent;
      for (int64_t n : sizes) sent.push_back(comm->send_async(rank_tensor(0, n, DType::F32), 1));
      for (auto& h : sent) h.wait();
      comm->send(rank_tensor(0, 4, DType::F32), 1);
    } else {
      for (int64_t n : sizes) {
        Tensor t = Tensor::zeros({n}, DType::F32);
        comm->recv(t, 0);
        expect_values(
            t, n, [](int64_t i) { return rank_value(0, i); }, fmt::format("message of {}", n));
      }
      Tensor wrong = Tensor::zeros({8}, DType::F32);
      comm->recv(wrong, 0);
    }
  });
  CHECK(outcomes[0].ok);
  CHECK(outcomes[1].error.find("shm group 'tp' recv: rank 0 sent 16 bytes, rank 1 expected 32") != std::string::npos);
}

TEST_CASE("intermediate tensors between pipeline stages over shm send/recv") {
  std::string segment = unique_name("shm-stages");
  auto outcomes = run_ranks(2, [&](int rank) {
    auto comm = make_shm(segment, rank, 2);
    // Steps 0 and 1 differ in shape (fresh buffers); step 2 repeats step 1's shapes (reused).
    auto stage_output = [](int step) {
      int64_t width = 3 + std::min(step, 1);
      return IntermediateTensors{
          {"hidden_states", make_tensor({2, width}, DType::BF16, [&](int64_t i) { return rank_value(step, i); })},
          {"residual", make_tensor({300000}, DType::F32, [&](int64_t i) { return rank_value(step + 1, i); })},
          {"empty", Tensor::zeros({0, 4}, DType::F16)}};
    };
    IntermediateTensors buffers;
    for (int step = 0; step < 3; ++step) {
      if (rank == 0) {
        send_intermediate(*comm, stage_output(step), 1);
        continue;
      }
      const void* before = buffers.empty() ? nullptr : buffers.at("residual").raw();
      buffers = recv_intermediate(*comm, 0, buffers);
      IntermediateTensors want = stage_output(step);
      if (buffers.encode_header() != want.encode_header()) fail("step {}: names, shapes or dtypes differ", step);
      for (const auto& [name, t] : want)
        expect_values(
            buffers.at(name), t.numel(), [&](int64_t i) { return element(t, i); }, name);
      bool reused = before && buffers.at("residual").raw() == before;
      if (reused != (step == 2)) fail("step {}: buffers {} reused", step, reused ? "were" : "were not");
    }
  });
  CHECK_MESSAGE(failures(outcomes).empty(), failures(outcomes));
}

TEST_CASE("shm: a rank refuses a segment that another user or a wider mode planted under the group's name") {
  const std::string segment = "troupe-test-planted-" + std::to_string(::getpid());
  const std::string path = "/" + segment;
  int fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0644);  // readable by everyone: not rank 0's
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 1 << 20) == 0);
  close(fd);
  CHECK_THROWS_WITH_AS(make_shm(segment, 1, 2, 2000), doctest::Contains("refusing to attach"), Error);
  shm_unlink(path.c_str());
}
