#include "actors/cluster_config.hpp"

#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <toml.hpp>
#include <tuple>

#include "actors/limits.hpp"
#include "actors/secrets.hpp"
#include "kernels/error.hpp"
#include "kernels/linear.hpp"
#include "model/kv_cache.hpp"
#include "model/parallel_layout.hpp"
#include "model/tokenizer/utf8.hpp"

namespace troupe {

namespace {

// Bounds on the values a node config may give (each refusal names the key and its range). Sizes
// are multiplied (tp x pp x dp, blocks x slots), summed (ranks over nodes) and converted
// (milliseconds to the clocks' nanoseconds): bounded, none of that overflows.
constexpr int64_t kMaxRanks = 4096;                    // tp, pp, dp, ep, their product, ranks per node and in all
constexpr int64_t kMaxStageLayers = int64_t(1) << 20;  // each pp_partition entry
constexpr int64_t kMaxNumSeqs = int64_t(1) << 16;
constexpr int64_t kMaxBatchedTokens = int64_t(1) << 24;
constexpr int64_t kMaxKvCacheBytes = int64_t(1) << 40;  // per rank
constexpr int64_t kMaxMicroBatches = 4096;
constexpr int64_t kMaxTimeoutMs = int64_t(7) * 24 * 3600 * 1000;  // a week

// Reads one TOML table strictly: typed getters name the file and key on error, and finish()
// rejects keys nobody asked for (a typo must not be silently ignored).
class TableReader {
 public:
  TableReader(const toml::value& table, std::string path, std::string file)
      : table_(table), path_(std::move(path)), file_(std::move(file)) {
    if (!table_.is_table()) fail("{}: [{}] must be a table", file_, path_);
  }
  bool has(const std::string& key) const { return table_.contains(key); }

  template <typename T>
  T get(const std::string& key, const T& fallback) {
    seen_.insert(key);
    if (!table_.contains(key)) return fallback;
    return convert<T>(key);
  }
  template <typename T>
  T require(const std::string& key) {
    seen_.insert(key);
    if (!table_.contains(key)) fail("{}: missing required key '{}' in [{}]", file_, key, path_);
    return convert<T>(key);
  }
  const toml::value& raw(const std::string& key) {
    seen_.insert(key);
    return table_.at(key);
  }
  void finish() const {
    for (const auto& [key, value] : table_.as_table())
      if (!seen_.count(key)) fail("{}: unknown key '{}' in [{}]", file_, key, path_);
  }
  std::string where(const std::string& key) const { return fmt::format("{}: [{}] {}", file_, path_, key); }

 private:
  template <typename T>
  T convert(const std::string& key) {
    const toml::value& v = table_.at(key);
    try {
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool> && sizeof(T) < sizeof(toml::integer)) {
        const toml::integer wide = toml::get<toml::integer>(v);  // toml11 narrows with a plain cast: 2^32 + 2 -> 2
        if (wide < std::numeric_limits<T>::min() || wide > std::numeric_limits<T>::max())
          fail("{}: [{}] {} = {} is out of range for its type ({}..{})", file_, path_, key, wide,
               std::numeric_limits<T>::min(), std::numeric_limits<T>::max());
        return T(wide);
      }
      return toml::get<T>(v);
    } catch (const toml::type_error&) {
      fail("{}: [{}] {} has the wrong type: expected {}, got {}", file_, path_, key, type_name<T>(), toml::format(v));
    }
  }
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, std::string>)
      return "a string";
    else if constexpr (std::is_same_v<T, bool>)
      return "a boolean";
    else if constexpr (std::is_integral_v<T>)
      return "an integer";
    else
      return "a list";
  }
  const toml::value& table_;
  std::string path_, file_;
  std::set<std::string> seen_;
};

std::pair<std::string, int> split_address(const std::string& address, const std::string& where) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) fail("{}: '{}' is not host:port", where, address);
  std::string host = address.substr(0, colon);
  int port = 0;
  const std::string digits = address.substr(colon + 1);  // digits only: stoi also took " +80"
  if (digits.empty() || digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string::npos)
    port = -1;
  else
    port = std::stoi(digits);
  if (port < 0 || port > 65535 || host.empty())
    fail("{}: '{}' is not host:port with a port in 0..65535", where, address);
  return {host, port};
}

// How deep arrays and inline tables nest in TOML text, brackets inside strings and comments not
// counted. toml11 parses nested values recursively: 20000 '[' overflow the stack (found by
// tests/fuzz/cluster_config_fuzz.cpp), so the text is measured before it is parsed.
size_t toml_nesting_depth(const std::string& text) {
  size_t depth = 0, deepest = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '#') {  // a comment, to the end of the line
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '"' || c == '\'') {  // a string: basic ("...", """...""") or literal ('...', '''...''')
      const bool multiline = text.compare(i, 3, std::string(3, c)) == 0;
      const std::string close = multiline ? std::string(3, c) : std::string(1, c);
      for (i += close.size(); i < text.size() && text.compare(i, close.size(), close) != 0; ++i) {
        if (!multiline && text[i] == '\n') break;  // unterminated: what follows is counted
        if (c == '"' && text[i] == '\\' && (multiline || text.compare(i + 1, 1, "\n") != 0))
          ++i;  // an escape: the next character cannot close the string
      }
      i += close.size() - 1;
      for (int extra = 0; multiline && extra < 2 && i + 1 < text.size() && text[i + 1] == c; ++extra)
        ++i;  // """a"""" is the string a": up to two quotes may precede the closing three
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

std::chrono::milliseconds positive_ms(TableReader& t, const std::string& key, std::chrono::milliseconds fallback) {
  int64_t v = t.get<int64_t>(key, fallback.count());
  if (v <= 0 || v > kMaxTimeoutMs)
    fail("{} must be a number of milliseconds in 1..{}, got {}", t.where(key), kMaxTimeoutMs, v);
  return std::chrono::milliseconds(v);
}

// The name of the network interface holding `host` (an address or a name resolving to one), or "".
std::string interface_with_address(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return "";
  ifaddrs* interfaces = nullptr;
  std::string name;
  if (::getifaddrs(&interfaces) == 0) {
    for (const addrinfo* a = found; a && name.empty(); a = a->ai_next)
      for (const ifaddrs* i = interfaces; i && name.empty(); i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != a->ai_family) continue;
        const bool same =
            a->ai_family == AF_INET
                ? reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr ==
                      reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr.s_addr
                : std::memcmp(&reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                              &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, sizeof(in6_addr)) == 0;
        if (same) name = i->ifa_name;
      }
    ::freeifaddrs(interfaces);
  }
  ::freeaddrinfo(found);
  return name;
}

}  // namespace

int ClusterConfig::total_ranks() const {
  int n = 0;
  for (const auto& node : nodes) n += node.ranks;
  return n;
}

std::vector<int> ClusterConfig::ranks_of(const std::string& name) const {
  int next = 0;
  for (const auto& n : nodes) {
    if (n.name == name) {
      std::vector<int> r;
      for (int i = 0; i < n.ranks; ++i) r.push_back(next + i);
      return r;
    }
    next += n.ranks;
  }
  fail("{}: no node named '{}'", source.string(), name);
}

const NodeSpec& ClusterConfig::node(const std::string& name) const {
  for (const auto& n : nodes)
    if (n.name == name) return n;
  fail("{}: no node named '{}'", source.string(), name);
}

UcxResources ClusterConfig::ucx_resources(int rank) const {
  UcxResources r = ucx;
  const bool one_host =
      std::all_of(nodes.begin(), nodes.end(), [](const NodeSpec& n) { return is_loopback_host(n.host); });
  if (one_host) {
    if (r.transports.empty()) r.transports = "sm,self";
    return r;
  }
  if (!r.devices.empty()) return r;
  int first = 0;
  const NodeSpec* mine = nullptr;
  for (const auto& n : nodes) {
    if (rank >= first && rank < first + n.ranks) mine = &n;
    first += n.ranks;
  }
  if (!mine) fail("{}: no node holds rank {}", source.string(), rank);
  r.devices = interface_with_address(mine->host);
  if (r.devices.empty())
    fail(
        "{}: node '{}' has host {}, but no network interface of this machine has that address; set [ucx] devices "
        "(e.g. \"eth0\" or \"mlx5_0:1\") to the interfaces the ranks should use",
        source.string(), mine->name, mine->host);
  return r;
}

TlsCredentials ClusterConfig::client_credentials(std::filesystem::path cert_file,
                                                 std::filesystem::path key_file) const {
  if (!tls.enabled()) return {};
  const char* env_cert = std::getenv("TROUPE_TLS_CERT");
  const char* env_key = std::getenv("TROUPE_TLS_KEY");
  if (cert_file.empty() && env_cert) cert_file = env_cert;
  if (key_file.empty() && env_key) key_file = env_key;
  if (cert_file.empty() || key_file.empty())
    fail(
        "cluster '{}' uses mutual TLS ([tls] in {}): the client certificate{} missing. Give --tls-cert and --tls-key "
        "(or TROUPE_TLS_CERT and TROUPE_TLS_KEY): a client certificate signed by the cluster CA {}, made by "
        "`troupe keys --out DIR --client NAME`",
        name, source.string(),
        cert_file.empty() && key_file.empty() ? " and its key are"
        : cert_file.empty()                   ? " is"
                                              : "'s key is",
        tls.ca_file.string());
  return {tls.ca_file, cert_file, key_file};
}

ClusterConfig ClusterConfig::load(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) fail("cannot open cluster config {}", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

ClusterConfig ClusterConfig::parse(const std::string& text, const std::filesystem::path& source) {
  const std::string file = source.string();
  // TOML is UTF-8. toml11 3.7 reads out of bounds reporting invalid UTF-8 in a literal string
  // (found by tests/fuzz/cluster_config_fuzz.cpp): such text is refused before it gets there.
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = tokenizer::valid_utf8_char_length(text, pos);
    if (n == 0) fail("{}: not valid TOML: invalid UTF-8 at byte {}", file, pos);
    pos += n;
  }
  if (constexpr size_t kMaxNesting = 32; toml_nesting_depth(text) > kMaxNesting)
    fail("{}: not valid TOML here: arrays or inline tables nest deeper than {}", file, kMaxNesting);
  toml::value root;
  try {
    std::istringstream in(text);
    root = toml::parse(in, file);
  } catch (const toml::syntax_error& e) {
    fail("{}: not valid TOML: {}", file, e.what());
  }
  ClusterConfig c;
  c.source = source;
  auto beside_config = [&](std::filesystem::path p) { return p.is_relative() ? source.parent_path() / p : p; };
  TableReader top(root, "top level", file);
  for (const char* section : {"cluster", "model", "parallel", "nodes"})
    if (!top.has(section)) fail("{}: missing required table [{}]", file, section);

  TableReader cluster(top.raw("cluster"), "cluster", file);
  c.name = cluster.require<std::string>("name");
  if (cluster.has("secret") && cluster.has("secret_file"))
    fail("{}: [cluster] needs exactly one of secret and secret_file", file);
  if (cluster.has("secret_file")) {  // a path relative to the config, mode 0600
    c.secret =
        read_secret_file(beside_config(cluster.require<std::string>("secret_file")), cluster.where("secret_file"));
  } else {
    c.secret = cluster.require<std::string>("secret");
  }
  if (c.secret.empty()) fail("{}: [cluster] secret must not be empty", file);
  if (c.name.size() > limits::kMaxName || c.secret.size() > limits::kMaxBlobBytes)  // a join would be refused
    fail("{}: [cluster] name is {} bytes (at most {}), secret {} bytes (at most {})", file, c.name.size(),
         limits::kMaxName, c.secret.size(), limits::kMaxBlobBytes);
  std::tie(c.coordinator_host, c.coordinator_port) =
      split_address(cluster.require<std::string>("coordinator"), cluster.where("coordinator"));
  c.insecure = cluster.get<bool>("insecure", false);
  cluster.finish();
  if (top.has("tls")) {  // the files are checked when a process uses them (a client has no node key)
    TableReader tls(top.raw("tls"), "tls", file);
    c.tls = {beside_config(tls.require<std::string>("ca_file")), beside_config(tls.require<std::string>("cert_file")),
             beside_config(tls.require<std::string>("key_file"))};
    tls.finish();
  }
  if (!c.tls.enabled() && !c.insecure && !is_loopback_host(c.coordinator_host))
    fail(
        "{}: the coordinator address {} is not loopback and there is no [tls]: anyone who reaches it could join or "
        "drive the cluster. Make keys with `troupe keys --out DIR` and add [tls] ca_file, cert_file and key_file, or "
        "set [cluster] insecure = true to run in cleartext on a network you trust",
        file, c.coordinator_host);

  TableReader model(top.raw("model"), "model", file);
  c.model_path = beside_config(model.require<std::string>("path"));
  c.dtype = model.get<std::string>("dtype", "auto");
  if (c.dtype != "auto")  // the one honoured value: weights compute in the dtype the checkpoint stores
    fail(
        "{} = '{}' is not supported: ranks compute in the checkpoint's stored dtype (f32, bf16 or f16); "
        "use \"auto\" or convert the checkpoint (troupe make-model writes bf16)",
        model.where("dtype"), c.dtype);
  c.quantize = model.get<std::string>("quantize", "none");
  try {
    parse_weight_format(c.quantize);
  } catch (const Error& e) {
    fail("{}: {}", model.where("quantize"), e.what());
  }
  model.finish();

  TableReader parallel(top.raw("parallel"), "parallel", file);
  c.tp = parallel.get<int>("tp", 1);
  c.pp = parallel.get<int>("pp", 1);
  c.dp = parallel.get<int>("dp", 1);
  c.ep = parallel.get<int>("ep", 1);
  c.cp = parallel.get<int>("cp", 1);
  std::tie(c.ring_degree, c.ulysses_degree) =
      context_parallel_degrees(c.cp, parallel.get<int>("ring_degree", 0), parallel.get<int>("ulysses_degree", 0));
  c.order = parallel.get<std::string>("order", "tp-pp-dp");
  if (c.order != "tp-pp-dp" && c.order != "tp-cp-pp-dp")  // the placement the runtime implements
    fail(
        "{} = '{}' is not supported: ranks are placed tp-cp-pp-dp (tp fastest, then cp, then pp, then dp; "
        "\"tp-pp-dp\" names the same placement)",
        parallel.where("order"), c.order);
  c.pp_partition = parallel.get<std::vector<int64_t>>("pp_partition", {});
  for (auto [key, v] : {std::pair{"tp", c.tp},
                        {"pp", c.pp},
                        {"dp", c.dp},
                        {"ep", c.ep},
                        {"cp", c.cp},
                        {"ring_degree", c.ring_degree},
                        {"ulysses_degree", c.ulysses_degree}})
    if (v < 1 || v > kMaxRanks) fail("{} must be in 1..{}, got {}", parallel.where(key), kMaxRanks, v);
  if (c.ep > c.tp && c.cp > 1)
    fail("{}: expert parallelism over replicas (ep {} > tp {}) does not combine with context parallelism (cp {})", file,
         c.ep, c.tp, c.cp);
  if (c.ring_degree * c.ulysses_degree != c.cp)  // each <= 4096: no overflow
    fail("{}: ring_degree ({}) x ulysses_degree ({}) must equal the context parallel size (cp = {})", file,
         c.ring_degree, c.ulysses_degree, c.cp);
  // Each <= 4096: no int64 overflow.
  if (int64_t ranks = int64_t(c.tp) * c.cp * c.pp * c.dp; ranks > kMaxRanks)
    fail("{}: [parallel] tp x cp x pp x dp = {} x {} x {} x {} = {} ranks: at most {}", file, c.tp, c.cp, c.pp, c.dp,
         ranks, kMaxRanks);
  if (c.pp_partition.size() > size_t(kMaxRanks))
    fail("{} lists more than {} stages", parallel.where("pp_partition"), kMaxRanks);
  for (int64_t layers : c.pp_partition)
    if (layers < 1 || layers > kMaxStageLayers)
      fail("{} holds a stage of {} layers: each must be in 1..{}", parallel.where("pp_partition"), layers,
           kMaxStageLayers);
  parallel.finish();

  if (top.has("ucx")) {
    TableReader ucx(top.raw("ucx"), "ucx", file);
    c.ucx.transports = ucx.get<std::string>("transports", "");
    c.ucx.devices = ucx.get<std::string>("devices", "");
    ucx.finish();
  }
  if (top.has("scheduler")) {
    TableReader s(top.raw("scheduler"), "scheduler", file);
    c.max_num_seqs = s.get<int64_t>("max_num_seqs", c.max_num_seqs);
    c.max_num_batched_tokens = s.get<int64_t>("max_num_batched_tokens", c.max_num_batched_tokens);
    c.block_size = s.get<int64_t>("block_size", c.block_size);
    c.kv_cache_bytes = s.get<int64_t>("kv_cache_bytes", c.kv_cache_bytes);
    c.num_kv_blocks = s.get<int64_t>("num_kv_blocks", 0);
    c.micro_batches = s.get<int>("micro_batches", 0);
    if (c.micro_batches < 0 || c.micro_batches > kMaxMicroBatches)
      fail("{} must be in 0..{} (0 = one per pipeline stage), got {}", s.where("micro_batches"), kMaxMicroBatches,
           c.micro_batches);
    for (auto [key, v, max] : {std::tuple{"max_num_seqs", c.max_num_seqs, kMaxNumSeqs},
                               {"max_num_batched_tokens", c.max_num_batched_tokens, kMaxBatchedTokens},
                               {"block_size", c.block_size, kMaxKvBlockSize},
                               {"kv_cache_bytes", c.kv_cache_bytes, kMaxKvCacheBytes}})
      if (v < 1 || v > max) fail("{} must be in 1..{}, got {}", s.where(key), max, v);
    if (c.num_kv_blocks < 0 || c.num_kv_blocks > kMaxKvBlocks)
      fail("{} must be in 0..{} (0: from kv_cache_bytes), got {}", s.where("num_kv_blocks"), kMaxKvBlocks,
           c.num_kv_blocks);
    s.finish();
  }
  if (top.has("timeouts")) {
    TableReader t(top.raw("timeouts"), "timeouts", file);
    c.heartbeat_interval = positive_ms(t, "heartbeat_interval_ms", c.heartbeat_interval);
    c.heartbeat_timeout = positive_ms(t, "heartbeat_timeout_ms", c.heartbeat_timeout);
    c.collective_timeout = positive_ms(t, "collective_timeout_ms", c.collective_timeout);
    c.startup_timeout = positive_ms(t, "startup_timeout_ms", c.startup_timeout);
    t.finish();
    if (c.heartbeat_timeout <= c.heartbeat_interval)
      fail("{}: [timeouts] heartbeat_timeout_ms ({}) must exceed heartbeat_interval_ms ({})", file,
           c.heartbeat_timeout.count(), c.heartbeat_interval.count());
  }

  if (top.has("recovery")) {
    TableReader r(top.raw("recovery"), "recovery", file);
    RecoveryOptions& o = c.recovery;
    o.enabled = r.get<bool>("enabled", o.enabled);
    o.step_deadline_floor = positive_ms(r, "step_deadline_floor_ms", o.step_deadline_floor);
    if (r.has("step_deadline_factor") && r.raw("step_deadline_factor").is_integer())  // 10 as well as 10.0
      o.step_deadline_factor = double(toml::get<toml::integer>(r.raw("step_deadline_factor")));
    else
      o.step_deadline_factor = r.get<double>("step_deadline_factor", o.step_deadline_factor);
    if (!(o.step_deadline_factor >= 1 && o.step_deadline_factor <= 1000))
      fail("{} must be in 1..1000, got {}", r.where("step_deadline_factor"), o.step_deadline_factor);
    o.rejoin_timeout = positive_ms(r, "rejoin_timeout_ms", o.rejoin_timeout);
    o.max_restarts = r.get<int>("max_restarts", o.max_restarts);
    if (o.max_restarts < 0 || o.max_restarts > 1000)
      fail("{} must be in 0..1000, got {}", r.where("max_restarts"), o.max_restarts);
    o.max_recoveries = r.get<int>("max_recoveries", o.max_recoveries);
    if (o.max_recoveries < 0 || o.max_recoveries > 1000)
      fail("{} must be in 0..1000, got {}", r.where("max_recoveries"), o.max_recoveries);
    o.restart_period = positive_ms(r, "restart_period_ms", o.restart_period);
    r.finish();
  }

  if (top.has("experiment")) {
    TableReader e(top.raw("experiment"), "experiment", file);
    c.stage = e.get<std::string>("stage", c.stage);
    c.record_timeline = e.get<bool>("record_timeline", false);
    for (const auto& [key, v] : top.raw("experiment").as_table())  // the stage kind's options, as written
      if (key != "stage" && key != "record_timeline")
        c.stage_options[key] = v.is_string() ? v.as_string().str : toml::format(v);
  }

  const toml::value& nodes = top.raw("nodes");
  if (!nodes.is_array() || nodes.as_array().empty()) fail("{}: [[nodes]] must be a non-empty array of tables", file);
  std::set<std::string> names;
  for (size_t i = 0; i < nodes.as_array().size(); ++i) {
    TableReader n(nodes.as_array()[i], fmt::format("nodes #{}", i + 1), file);
    NodeSpec spec;
    spec.name = n.require<std::string>("name");
    spec.host = n.get<std::string>("host", spec.host);
    spec.ranks = n.get<int>("ranks", 1);
    spec.devices = n.get<std::vector<std::string>>("devices", {});
    n.finish();
    if (spec.ranks < 1 || spec.ranks > kMaxRanks)
      fail("{} must be in 1..{}, got {}", n.where("ranks"), kMaxRanks, spec.ranks);
    for (auto [key, value] : {std::pair{"name", &spec.name}, {"host", &spec.host}})  // a join would be refused
      if (value->size() > limits::kMaxName)
        fail("{} is {} bytes: at most {}", n.where(key), value->size(), limits::kMaxName);
    if (!spec.devices.empty() && int(spec.devices.size()) != spec.ranks)
      fail("{} lists {} devices for {} ranks", n.where("devices"), spec.devices.size(), spec.ranks);
    for (const auto& d : spec.devices)
      if (d != "cpu")
        fail(
            "{}: device '{}' is not supported: ranks run on the CPU in this build (GPU ranks are not "
            "implemented yet); use \"cpu\" or leave devices out",
            n.where("devices"), d);
    if (!names.insert(spec.name).second) fail("{}: node name '{}' appears twice", file, spec.name);
    c.nodes.push_back(spec);
    if (c.total_ranks() > kMaxRanks)  // before it can overflow: each node holds at most kMaxRanks
      fail("{}: the nodes hold more than {} ranks", file, kMaxRanks);
  }
  top.finish();
  if (c.total_ranks() != c.world_size())
    c.cp == 1 ? fail("{}: the nodes hold {} ranks but [parallel] tp x pp x dp = {} x {} x {} = {}", file,
                     c.total_ranks(), c.tp, c.pp, c.dp, c.world_size())
              : fail("{}: the nodes hold {} ranks but [parallel] tp x cp x pp x dp = {} x {} x {} x {} = {}", file,
                     c.total_ranks(), c.tp, c.cp, c.pp, c.dp, c.world_size());
  return c;
}

// The global rank that member `index` of exchange `name` is, or -1 for no such member: "pp-R" is
// data-parallel replica R (its tp x cp x pp ranks, consecutive in the tp-cp-pp-dp order), "tp-F" the
// tp group whose first rank is F (tp ranks are consecutive), "ulysses-F" and "ring-F" the context-
// parallel sub-groups whose first rank is F (ulysses members tp apart, ring members ulysses x tp apart).
int bootstrap_exchange_member(const ClusterConfig& c, const std::string& name, int index, int size) {
  const size_t dash = name.find('-');
  if (dash == std::string::npos || name.size() > dash + 10) return -1;
  const std::string group = name.substr(0, dash), digits = name.substr(dash + 1);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  const int64_t number = std::stoll(digits);
  if (index < 0 || index >= size || number >= c.world_size()) return -1;
  if (group == "pp") return size == c.replica_size() && number < c.dp ? int(number) * size + index : -1;
  if (group == "ep") {  // the wide expert group of a stage: its tp ranks in every replica, tp fastest
    if (c.ep <= c.tp || size != c.ep || number >= c.replica_size() || number % c.tp != 0) return -1;
    return int(number) + index % c.tp + index / c.tp * c.replica_size();
  }
  int stride = 0, members = 0;  // between members, and how many
  if (group == "tp") stride = 1, members = c.tp;
  if (group == "ulysses") stride = c.tp, members = c.ulysses_degree;
  if (group == "ring") stride = c.tp * c.ulysses_degree, members = c.ring_degree;
  if (members == 0 || size != members) return -1;
  // F must be a group's first member: its own coordinate in the group's dimension is 0.
  if (number / stride % members != 0) return -1;
  return int(number) + index * stride;
}

}  // namespace troupe
