// Node config files: a malformed file fails at start with the file and the key named.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>

#include "actors/cluster_config.hpp"
#include "actors/rank_builder.hpp"
#include "bench/cluster_process.hpp"
#include "kernels/error.hpp"
#include "tests/cli/cli_runner.hpp"
#include "tests/test_paths.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

const char* kGood = R"(
[cluster]
name = "c"
secret = "s"
coordinator = "127.0.0.1:47100"

[model]
path = "/models/m"

[parallel]
tp = 2
pp = 2

[scheduler]
max_num_seqs = 8

[timeouts]
heartbeat_interval_ms = 100
heartbeat_timeout_ms = 1000

[[nodes]]
name = "a"
ranks = 2

[[nodes]]
name = "b"
host = "127.0.0.2"
ranks = 2
)";

std::string error_of(const std::string& text) {
  try {
    ClusterConfig::parse(text, "cluster.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Whether `cert` verifies against the CA certificate for `purpose` (X509_PURPOSE_SSL_*).
bool verifies(const std::filesystem::path& ca, const std::filesystem::path& cert, int purpose) {
  auto read = [](const std::filesystem::path& p) {
    FILE* f = std::fopen(p.c_str(), "r");
    REQUIRE(f);
    X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    REQUIRE(x);
    return x;
  };
  X509* ca_cert = read(ca);
  X509* leaf = read(cert);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca_cert);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  const bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(leaf);
  X509_free(ca_cert);
  return ok;
}

}  // namespace

TEST_CASE("a good node config parses, ranks in file order") {
  auto c = ClusterConfig::parse(kGood, "cluster.toml");
  CHECK(c.world_size() == 4);
  CHECK(c.ranks_of("b") == std::vector<int>{2, 3});
  CHECK(c.node("b").host == "127.0.0.2");
  CHECK(c.coordinator_port == 47100);
  CHECK(c.max_num_seqs == 8);
  CHECK(c.heartbeat_timeout == 1000ms);
}

TEST_CASE("[parallel] cp splits into ring and ulysses degrees, and the nodes must hold tp x cp x pp x dp ranks") {
  const std::string cp4 = replaced(kGood, "tp = 2\npp = 2", "tp = 1\npp = 1\ncp = 4\nulysses_degree = 2");
  const ClusterConfig c = ClusterConfig::parse(cp4, "cluster.toml");
  CHECK(c.cp == 4);
  CHECK(c.ring_degree == 2);
  CHECK(c.ulysses_degree == 2);
  CHECK(c.world_size() == 4);
  const ClusterConfig ring = ClusterConfig::parse(replaced(cp4, "ulysses_degree = 2", ""), "cluster.toml");
  CHECK((ring.ring_degree == 4 && ring.ulysses_degree == 1));  // neither degree given: ring attention
  CHECK(error_of(replaced(cp4, "ulysses_degree = 2", "ulysses_degree = 2\nring_degree = 1")) ==
        "cluster.toml: ring_degree (1) x ulysses_degree (2) must equal the context parallel size (cp = 4)");
  CHECK(error_of(replaced(cp4, "cp = 4", "cp = 2")) ==
        "cluster.toml: the nodes hold 4 ranks but [parallel] tp x cp x pp x dp = 1 x 2 x 1 x 1 = 2");
  CHECK(error_of(replaced(cp4, "cp = 4", "cp = 0")) == "cluster.toml: [parallel] cp must be in 1..4096, got 0");
  CHECK(error_of(replaced(cp4, "cp = 4", "cp = 4\norder = \"tp-cp-pp-dp\"")) == "(no error)");
}

TEST_CASE("bootstrap exchanges name the members rank_topology puts in each tp, ring and ulysses group") {
  // tp 2 x cp 4 (ring 2 x ulysses 2) x pp 2 x dp 2 = 32 ranks.
  const std::string text =
      "[cluster]\nname = \"c\"\nsecret = \"s\"\ncoordinator = \"127.0.0.1:47100\"\n[model]\npath = \"/m\"\n"
      "[parallel]\ntp = 2\npp = 2\ndp = 2\ncp = 4\nring_degree = 2\n"
      "[[nodes]]\nname = \"a\"\nranks = 16\n[[nodes]]\nname = \"b\"\nhost = \"127.0.0.2\"\nranks = 16\n";
  const ClusterConfig c = ClusterConfig::parse(text, "cluster.toml");
  REQUIRE(c.world_size() == 32);
  ParallelShape shape{c.tp, c.pp, c.dp, c.ep};
  shape.cp = c.cp, shape.ring_degree = c.ring_degree, shape.ulysses_degree = c.ulysses_degree;
  for (int rank = 0; rank < c.world_size(); ++rank) {
    CAPTURE(rank);
    const RankTopology t = rank_topology(shape, rank);
    for (const GroupCoordinator* g : {&t.tp, &t.ring, &t.ulysses}) {
      const std::string exchange = fmt::format("{}-{}", g->name(), g->first_rank());
      for (int i = 0; i < g->world_size(); ++i)
        CHECK(bootstrap_exchange_member(c, exchange, i, g->world_size()) == g->ranks()[size_t(i)]);
      CHECK(bootstrap_exchange_member(c, exchange, g->world_size(), g->world_size()) == -1);
      CHECK(bootstrap_exchange_member(c, exchange, 0, g->world_size() + 1) == -1);
    }
    CHECK(t.layout.ring_rank * c.ulysses_degree + t.layout.ulysses_rank == (rank / c.tp) % c.cp);
  }
  // Rank 2 is cp rank 1 (ring 0, ulysses 1): a ring group starts there, no ulysses group; rank 4 is cp
  // rank 2 (ring 1, ulysses 0): the other way round.
  CHECK(bootstrap_exchange_member(c, "ring-2", 1, 2) == 6);
  CHECK(bootstrap_exchange_member(c, "ulysses-2", 0, 2) == -1);
  CHECK(bootstrap_exchange_member(c, "ulysses-4", 1, 2) == 6);
  CHECK(bootstrap_exchange_member(c, "ring-4", 0, 2) == -1);
  CHECK(bootstrap_exchange_member(c, "nccl-0", 0, 2) == -1);
  CHECK(bootstrap_exchange_member(c, "pp-1", 3, 16) == 19);
}

TEST_CASE("[recovery] has defaults, parses and is bounded") {
  const ClusterConfig defaults = ClusterConfig::parse(kGood, "cluster.toml");
  CHECK(defaults.recovery.enabled);
  CHECK(defaults.recovery.max_restarts == 5);
  CHECK(defaults.recovery.max_recoveries == 10);
  CHECK(defaults.recovery.step_deadline_floor == 10000ms);
  const std::string with =
      std::string(kGood) +
      "\n[recovery]\nenabled = false\nstep_deadline_floor_ms = 2000\nstep_deadline_factor = 4\n"
      "rejoin_timeout_ms = 9000\nmax_restarts = 2\nmax_recoveries = 3\nrestart_period_ms = 30000\n";
  const ClusterConfig c = ClusterConfig::parse(with, "cluster.toml");
  CHECK_FALSE(c.recovery.enabled);
  CHECK(c.recovery.step_deadline_floor == 2000ms);
  CHECK(c.recovery.step_deadline_factor == 4.0);
  CHECK(c.recovery.rejoin_timeout == 9000ms);
  CHECK(c.recovery.max_restarts == 2);
  CHECK(c.recovery.max_recoveries == 3);
  CHECK(c.recovery.restart_period == 30000ms);
  CHECK(ClusterConfig::parse(replaced(with, "step_deadline_factor = 4", "step_deadline_factor = 2.5"), "cluster.toml")
            .recovery.step_deadline_factor == 2.5);
  CHECK(error_of(replaced(with, "max_restarts = 2", "max_restarts = -1")) ==
        "cluster.toml: [recovery] max_restarts must be in 0..1000, got -1");
  CHECK(error_of(replaced(with, "step_deadline_factor = 4", "step_deadline_factor = 0.5")) ==
        "cluster.toml: [recovery] step_deadline_factor must be in 1..1000, got 0.5");
  CHECK(error_of(replaced(with, "rejoin_timeout_ms = 9000", "rejoin_timeout_ms = 0"))
            .find("[recovery] rejoin_timeout_ms") != std::string::npos);
  CHECK(error_of(with + "restarts = 3\n") == "cluster.toml: unknown key 'restarts' in [recovery]");
}

TEST_CASE("malformed node configs name the file and the key") {
  CHECK(error_of(replaced(kGood, "secret = \"s\"\n", "")) ==
        "cluster.toml: missing required key 'secret' in [cluster]");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seq = 8")) ==
        "cluster.toml: unknown key 'max_num_seq' in [scheduler]");
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = \"two\""))
            .find("cluster.toml: [parallel] tp has the wrong type: expected an integer") == 0);
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = 1")) ==
        "cluster.toml: the nodes hold 4 ranks but [parallel] tp x pp x dp = 1 x 2 x 1 = 2");
  CHECK(error_of(replaced(kGood, "coordinator = \"127.0.0.1:47100\"", "coordinator = \"localhost\"")) ==
        "cluster.toml: [cluster] coordinator: 'localhost' is not host:port");
  CHECK(error_of(replaced(kGood, "[model]\npath = \"/models/m\"\n", "")) ==
        "cluster.toml: missing required table [model]");
  CHECK(error_of(replaced(kGood, "heartbeat_timeout_ms = 1000", "heartbeat_timeout_ms = 50"))
            .find("must exceed heartbeat_interval_ms") != std::string::npos);
  CHECK(error_of(replaced(kGood, "name = \"b\"", "name = \"a\"")) == "cluster.toml: node name 'a' appears twice");
  CHECK(error_of("[cluster\nname=").find("cluster.toml: not valid TOML") == 0);
}

TEST_CASE("sizes, limits and timeouts are bounded: no product, sum or conversion overflows") {
  // An integer wider than the field used to be truncated silently (4294967298 read as tp = 2).
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = 4294967298")) ==
        "cluster.toml: [parallel] tp = 4294967298 is out of range for its type (-2147483648..2147483647)");
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = 5000")) == "cluster.toml: [parallel] tp must be in 1..4096, got 5000");
  // tp x pp x dp used to overflow int (65536^3): the product is checked before the nodes.
  CHECK(error_of(replaced(kGood, "pp = 2", "pp = 4096\ndp = 4096")) ==
        "cluster.toml: [parallel] tp x cp x pp x dp = 2 x 1 x 4096 x 4096 = 33554432 ranks: at most 4096");
  CHECK(
      error_of(replaced(kGood, "pp = 2", "pp = 2\npp_partition = [9223372036854775807, 1]")) ==
      "cluster.toml: [parallel] pp_partition holds a stage of 9223372036854775807 layers: each must be in 1..1048576");
  CHECK(error_of(replaced(kGood, "ranks = 2\n\n", "ranks = 2147483647\n\n")) ==
        "cluster.toml: [nodes #1] ranks must be in 1..4096, got 2147483647");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 8\nblock_size = 0")) ==
        "cluster.toml: [scheduler] block_size must be in 1..1024, got 0");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 8\nblock_size = 1048576")) ==
        "cluster.toml: [scheduler] block_size must be in 1..1024, got 1048576");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 1099511627776")) ==
        "cluster.toml: [scheduler] max_num_seqs must be in 1..65536, got 1099511627776");
  CHECK(
      error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 8\nmax_num_batched_tokens = 9223372036854775807")) ==
      "cluster.toml: [scheduler] max_num_batched_tokens must be in 1..16777216, got 9223372036854775807");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 8\nkv_cache_bytes = 9223372036854775807")) ==
        "cluster.toml: [scheduler] kv_cache_bytes must be in 1..1099511627776, got 9223372036854775807");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 8\nnum_kv_blocks = -5")) ==
        "cluster.toml: [scheduler] num_kv_blocks must be in 0..16777216 (0: from kv_cache_bytes), got -5");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 8\nnum_kv_blocks = 4294967296")) ==
        "cluster.toml: [scheduler] num_kv_blocks must be in 0..16777216 (0: from kv_cache_bytes), got 4294967296");
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8", "max_num_seqs = 8\nmicro_batches = 100000")) ==
        "cluster.toml: [scheduler] micro_batches must be in 0..4096 (0 = one per pipeline stage), got 100000");
  // Milliseconds beyond a week used to overflow the nanosecond clock arithmetic of heartbeats.
  CHECK(error_of(replaced(kGood, "heartbeat_timeout_ms = 1000", "heartbeat_timeout_ms = 9223372036854775807")) ==
        "cluster.toml: [timeouts] heartbeat_timeout_ms must be a number of milliseconds in 1..604800000, got "
        "9223372036854775807");
  CHECK(error_of(replaced(kGood, "\"127.0.0.1:47100\"", "\"127.0.0.1: +80\"")) ==
        "cluster.toml: [cluster] coordinator: '127.0.0.1: +80' is not host:port with a port in 0..65535");
  CHECK(error_of(replaced(kGood, "\"127.0.0.1:47100\"", "\"127.0.0.1:65536\"")) ==
        "cluster.toml: [cluster] coordinator: '127.0.0.1:65536' is not host:port with a port in 0..65535");
  CHECK(error_of(replaced(kGood, "name = \"b\"", "name = \"" + std::string(257, 'b') + "\"")) ==
        "cluster.toml: [nodes #2] name is 257 bytes: at most 256");
  // At the limits, the config is accepted.
  CHECK(error_of(replaced(kGood, "max_num_seqs = 8",
                          "max_num_seqs = 65536\nblock_size = 1024\nnum_kv_blocks = 16777216")) == "(no error)");
}

TEST_CASE("a node config that is not UTF-8 is refused before the TOML parser reads it") {
  // toml11 3.7 read out of bounds reporting invalid UTF-8 in a literal string (found by
  // tests/fuzz/cluster_config_fuzz.cpp; AddressSanitizer: heap-buffer-overflow in location::reset).
  CHECK(error_of(replaced(kGood, "name = \"c\"", "name = 'c\xff'")) ==
        "cluster.toml: not valid TOML: invalid UTF-8 at byte 20");
  CHECK(error_of(replaced(kGood, "name = \"c\"", "name = 'c\xe2\x82'")) ==
        "cluster.toml: not valid TOML: invalid UTF-8 at byte 20");
  CHECK(error_of(replaced(kGood, "name = \"c\"", "name = 'c\xe2\x82\xac'")) == "(no error)");  // U+20AC
}

TEST_CASE("deeply nested TOML is refused before toml11 recurses into it, brackets in strings and comments aside") {
  // 20000 '[' overflowed the stack of toml11's recursive parser (found by
  // tests/fuzz/cluster_config_fuzz.cpp; the release binary died of SIGSEGV too).
  const std::string too_deep = "cluster.toml: not valid TOML here: arrays or inline tables nest deeper than 32";
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = " + std::string(20000, '['))) == too_deep);
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = " + std::string(33, '[') + std::string(33, ']'))) == too_deep);
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = " + std::string(32, '[') + "2" + std::string(32, ']')))
            .find("[parallel] tp has the wrong type") != std::string::npos);  // 32 deep: parsed, then refused
  const std::string brackets(100, '[');
  CHECK(error_of(replaced(kGood, "secret = \"s\"", "secret = \"" + brackets + "\\\"\" # " + brackets)) == "(no error)");
  CHECK(error_of(replaced(kGood, "secret = \"s\"", "secret = '''" + brackets + "\n'''''")) == "(no error)");
  CHECK(error_of(replaced(kGood, "secret = \"s\"", "secret = \"\"\"" + brackets + "\"\"\"\"")) == "(no error)");
  // An unterminated string ends at its line for the count, so it cannot hide what follows.
  CHECK(error_of(replaced(kGood, "tp = 2", "tp = \"\ntp = " + std::string(20000, '['))) == too_deep);
}

TEST_CASE("troupe cluster refuses a malformed config at start, naming file and key") {
  auto path = std::filesystem::temp_directory_path() / ("troupe_bad_config_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << replaced(kGood, "pp = 2", "pp = 2\nbogus = 1");
  auto r = test::run_troupe("cluster --config " + path.string());
  CHECK(r.exit_code != 0);
  CHECK(r.err.find(path.string() + ": unknown key 'bogus' in [parallel]") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("a cluster whose head dies at start is reported at once, with its log") {
  ClusterSpec spec;
  spec.model = "/nonexistent/model";
  spec.troupe_binary = test::binary_dir() / "troupe";
  ClusterProcess cluster(spec);
  const auto t0 = std::chrono::steady_clock::now();
  std::string error;
  try {
    cluster.connect(60s);
  } catch (const Error& e) {
    error = e.what();
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 20s);
  CHECK(error.find("exited during start-up") != std::string::npos);
  CHECK(error.find("cannot open /nonexistent/model/config.json") != std::string::npos);
}

TEST_CASE("every shipped examples/cluster/*.toml parses") {
  const auto folder = std::filesystem::path(TROUPE_SOURCE_DIR) / "examples" / "cluster";
  int parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.path().extension() != ".toml") continue;
    CAPTURE(entry.path());
    auto c = ClusterConfig::load(entry.path());
    CHECK(c.world_size() == c.tp * c.cp * c.pp * c.dp);
    CHECK(c.coordinator_host == "127.0.0.1");  // shipped examples stay on loopback
    ++parsed;
  }
  CHECK(parsed >= 2);
}

TEST_CASE("keys the runtime cannot honour are refused, saying why") {
  CHECK(error_of(replaced(kGood, "pp = 2", "pp = 2\norder = \"pp-tp-dp\"")) ==
        "cluster.toml: [parallel] order = 'pp-tp-dp' is not supported: ranks are placed tp-cp-pp-dp (tp fastest, "
        "then cp, then pp, then dp; \"tp-pp-dp\" names the same placement)");
  CHECK(error_of(replaced(kGood, "pp = 2", "pp = 2\norder = \"tp-pp-dp\"")) == "(no error)");
  CHECK(error_of(replaced(kGood, "path = \"/models/m\"", "path = \"/models/m\"\ndtype = \"bf16\""))
            .find("cluster.toml: [model] dtype = 'bf16' is not supported: ranks compute in the checkpoint's stored "
                  "dtype") == 0);
  CHECK(error_of(replaced(kGood, "path = \"/models/m\"", "path = \"/models/m\"\ndtype = \"auto\"")) == "(no error)");
  CHECK(error_of(replaced(kGood, "path = \"/models/m\"", "path = \"/models/m\"\nquantize = \"q8_0\"")) == "(no error)");
  CHECK(error_of(replaced(kGood, "path = \"/models/m\"", "path = \"/models/m\"\nquantize = \"q3_k\"")) ==
        "cluster.toml: [model] quantize: quantization 'q3_k' is not known (q8_0, q4_0 or none)");
  CHECK(error_of(
            replaced(kGood, "name = \"a\"\nranks = 2", "name = \"a\"\nranks = 2\ndevices = [\"cuda:0\", \"cuda:1\"]"))
            .find("device 'cuda:0' is not supported: ranks run on the CPU in this build") != std::string::npos);
  CHECK(error_of(replaced(kGood, "name = \"a\"\nranks = 2", "name = \"a\"\nranks = 2\ndevices = [\"cpu\", \"cpu\"]")) ==
        "(no error)");
}

TEST_CASE("a secret_file is read only when nobody but its owner may read it") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("troupe_secret_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::filesystem::path secret = dir / "cluster.secret";
  std::ofstream(secret) << "t0ps3cret\n";
  std::string text = kGood;
  text.replace(text.find("secret = \"s\""), 12, "secret_file = \"cluster.secret\"");
  std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  CHECK(ClusterConfig::parse(text, dir / "cluster.toml").secret == "t0ps3cret");  // relative to the config
  std::filesystem::permissions(secret, std::filesystem::perms::group_read, std::filesystem::perm_options::add);
  CHECK_THROWS_WITH_AS(ClusterConfig::parse(text, dir / "cluster.toml"), doctest::Contains("chmod 600"), Error);
  std::string both = kGood;
  both.insert(both.find("secret = \"s\""), "secret_file = \"cluster.secret\"\n");
  CHECK_THROWS_WITH_AS(ClusterConfig::parse(both, dir / "cluster.toml"),
                       doctest::Contains("exactly one of secret and secret_file"), Error);
  // A FIFO under the name does not block the read; a huge file is not read whole.
  std::filesystem::remove(secret);
  REQUIRE(::mkfifo(secret.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(ClusterConfig::parse(text, dir / "cluster.toml"), doctest::Contains("is not a readable file"),
                       Error);
  std::filesystem::remove(secret);
  std::ofstream(secret) << std::string(2 << 20, 's');
  std::filesystem::permissions(secret, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  CHECK_THROWS_WITH_AS(ClusterConfig::parse(text, dir / "cluster.toml"), doctest::Contains("a secret is at most"),
                       Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a coordinator on a non-loopback address needs TLS or an explicit insecure") {
  const std::string exposed = replaced(kGood, "127.0.0.1:47100", "0.0.0.0:47100");
  CHECK(error_of(exposed).find("is not loopback and there is no [tls]") != std::string::npos);
  CHECK(error_of(replaced(exposed, "secret = \"s\"", "secret = \"s\"\ninsecure = true")) == "(no error)");
  for (const char* loopback : {"127.0.0.1", "127.4.5.6", "localhost", "::1"})
    CHECK(error_of(replaced(kGood, "127.0.0.1:47100", std::string(loopback) + ":47100")) == "(no error)");
  const std::string with_tls = exposed + "\n[tls]\nca_file = \"keys/ca.pem\"\ncert_file = \"keys/node.pem\"\n" +
                               "key_file = \"/abs/node.key\"\n";
  const ClusterConfig c = ClusterConfig::parse(with_tls, "/etc/troupe/cluster.toml");
  CHECK(c.tls.ca_file == "/etc/troupe/keys/ca.pem");  // relative to the config
  CHECK(c.tls.key_file == "/abs/node.key");
  CHECK(error_of(replaced(with_tls, "key_file = \"/abs/node.key\"\n", "")).find("missing required key 'key_file'") !=
        std::string::npos);
}

TEST_CASE("a client of a TLS cluster is told which credential it lacks") {
  const ClusterConfig plain = ClusterConfig::parse(kGood, "cluster.toml");
  CHECK_FALSE(plain.client_credentials("", "").enabled());  // no [tls]: nothing to present
  const ClusterConfig c = ClusterConfig::parse(
      std::string(kGood) + "\n[tls]\nca_file = \"ca.pem\"\ncert_file = \"node.pem\"\nkey_file = \"node.key\"\n",
      "/k/cluster.toml");
  ::unsetenv("TROUPE_TLS_CERT");
  ::unsetenv("TROUPE_TLS_KEY");
  CHECK_THROWS_WITH_AS(c.client_credentials("", ""),
                       doctest::Contains("the client certificate and its key are missing"), Error);
  CHECK_THROWS_WITH_AS(c.client_credentials("me.pem", ""), doctest::Contains("the client certificate's key is missing"),
                       Error);
  ::setenv("TROUPE_TLS_CERT", "/env/me.pem", 1);
  ::setenv("TROUPE_TLS_KEY", "/env/me.key", 1);
  const TlsCredentials from_env = c.client_credentials("", "");
  CHECK(from_env.ca_file == "/k/ca.pem");
  CHECK(from_env.cert_file == "/env/me.pem");
  CHECK(c.client_credentials("flag.pem", "flag.key").key_file == "flag.key");  // flags win
  ::unsetenv("TROUPE_TLS_CERT");
  ::unsetenv("TROUPE_TLS_KEY");
}

TEST_CASE("troupe keys makes a CA and node and client certificates it signed, keys private, never overwritten") {
  std::string dir = (std::filesystem::temp_directory_path() / "troupe-keys-XXXXXX").string();
  REQUIRE(mkdtemp(dir.data()));
  const std::filesystem::path k = std::filesystem::path(dir) / "k";
  const test::CommandResult first = test::run_troupe("keys --out " + k.string());
  REQUIRE(first.exit_code == 0);
  CHECK(first.out.find("[tls]") != std::string::npos);
  for (const char* key : {"ca.key", "node.key", "client.key"}) {
    struct stat st {};
    REQUIRE(::stat((k / key).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  const std::string node_pem = file_text(k / "node.pem");
  const test::CommandResult again = test::run_troupe("keys --out " + k.string() + " --client alice");
  REQUIRE(again.exit_code == 0);
  CHECK(again.out.find("kept " + (k / "node.pem").string()) != std::string::npos);
  CHECK(file_text(k / "node.pem") == node_pem);
  // Verified as a peer's TLS stack would: signed by the CA; a node serves and connects, a client
  // only connects.
  CHECK(verifies(k / "ca.pem", k / "node.pem", X509_PURPOSE_SSL_SERVER));
  CHECK(verifies(k / "ca.pem", k / "node.pem", X509_PURPOSE_SSL_CLIENT));
  CHECK(verifies(k / "ca.pem", k / "alice.pem", X509_PURPOSE_SSL_CLIENT));
  CHECK_FALSE(verifies(k / "ca.pem", k / "alice.pem", X509_PURPOSE_SSL_SERVER));
  REQUIRE(test::run_troupe("keys --out " + dir + "/other").exit_code == 0);
  CHECK_FALSE(verifies(k / "ca.pem", std::filesystem::path(dir) / "other/client.pem", X509_PURPOSE_SSL_CLIENT));
  CHECK(test::run_troupe("keys --out " + k.string() + " --client ../evil").exit_code != 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("UCX is kept to shared memory on one host and to the node's own interface across hosts") {
  const ClusterConfig local = ClusterConfig::parse(kGood, "cluster.toml");  // hosts 127.0.0.1 and 127.0.0.2
  CHECK(local.ucx_resources(3).transports == "sm,self");
  CHECK(local.ucx_resources(3).devices.empty());
  const ClusterConfig named =
      ClusterConfig::parse(std::string(kGood) + "\n[ucx]\ntransports = \"tcp,self\"\n", "cluster.toml");
  CHECK(named.ucx_resources(0).transports == "tcp,self");
  // A node on one of this machine's own non-loopback addresses gets that interface alone.
  ifaddrs* interfaces = nullptr;
  REQUIRE(::getifaddrs(&interfaces) == 0);
  std::string address, interface;
  for (const ifaddrs* i = interfaces; i && address.empty(); i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !(i->ifa_flags & IFF_LOOPBACK)) {
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof text);
      address = text, interface = i->ifa_name;
    }
  ::freeifaddrs(interfaces);
  const std::string two_hosts = replaced(kGood, "127.0.0.2", "203.0.113.77");
  if (!address.empty()) {
    const ClusterConfig c = ClusterConfig::parse(
        replaced(two_hosts, "name = \"a\"", "name = \"a\"\nhost = \"" + address + "\""), "cluster.toml");
    CHECK(c.ucx_resources(0).devices == interface);
    CHECK(c.ucx_resources(0).transports.empty());
  }
  const ClusterConfig elsewhere = ClusterConfig::parse(two_hosts, "cluster.toml");
  CHECK_THROWS_WITH_AS(elsewhere.ucx_resources(2), doctest::Contains("set [ucx] devices"), Error);
}
