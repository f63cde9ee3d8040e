// The test suite's child-process helper (tests/child_process.hpp): output capture, exit status, and
// the deadline that keeps a hanging child from hanging the suite.
#include "tests/child_process.hpp"

#include <doctest/doctest.h>

using namespace troupe::test;
using namespace std::chrono_literals;

TEST_CASE("run_child captures stdout, stderr and the exit status") {
  auto r = run_shell("echo out; echo err >&2; exit 3", 30s);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 3);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  auto merged = run_shell("echo out; echo err >&2", 30s, true);
  CHECK(merged.exit_code == 0);
  CHECK(merged.out == "out\nerr\n");
  auto killed = run_shell("kill -9 $$", 30s);
  CHECK(killed.term_signal == 9);
  CHECK(killed.exit_code == -1);
}

TEST_CASE("a child that hangs is killed at its deadline, with its output so far") {
  auto r = run_shell("echo started; echo to-stderr >&2; exec sleep 600", 1s);
  CHECK(r.timed_out);
  CHECK(r.term_signal == 9);
  CHECK(r.out == "started\n");
  CHECK(r.err == "to-stderr\n");
  CHECK(r.seconds < 60);  // killed at the 1 s deadline, not waited for (60 s leaves room for a loaded machine)
  CHECK(r.describe().find("killed at its deadline") != std::string::npos);
}

TEST_CASE("a grandchild that keeps the pipe open does not hang the caller") {
  auto r = run_shell("sleep 600 & echo parent-done", 30s);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "parent-done\n");
}

// Run only by the CTest self-check (tests/CMakeLists.txt) with --no-skip: it must fail, naming the
// hang and showing the child's output.
TEST_CASE("deliberately hanging child" * doctest::skip()) {
  require_no_timeout(run_shell("echo hanging-child-says-hello; exec sleep 600", 2s));
}
