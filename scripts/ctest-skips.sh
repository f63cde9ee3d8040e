#!/usr/bin/env bash
# Lists the test cases the last CTest run in BUILD skipped, with the reason each printed
# ("TROUPE_TEST_SKIPPED: <case>: <reason>", see tests/test_paths.hpp).
set -euo pipefail
log="${1:-build}/Testing/Temporary/LastTest.log"
[ -f "$log" ] || exit 0
awk '
  /^[0-9]+\/[0-9]+ Test: / { sub(/^[0-9]+\/[0-9]+ Test: /, ""); test = $0 }
  /^TROUPE_TEST_SKIPPED: / {
    reason = substr($0, length("TROUPE_TEST_SKIPPED: ") + 1)
    name = test; sub(/^[^:]*:/, "", name)  # the doctest case name, without the "<suite>: " prefix
    if (index(reason, name ": ") == 1) reason = substr(reason, length(name ": ") + 1)
    if (!(test in reasons)) n++
    reasons[test] = reason
  }
  END {
    if (n == 0) exit
    printf "\n%d test case(s) SKIPPED:\n", n
    for (t in reasons) printf "  SKIPPED  %s\n           %s\n", t, reasons[t]
  }' "$log"
