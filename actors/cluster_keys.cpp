#include "actors/cluster_keys.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "kernels/error.hpp"

namespace troupe {

namespace {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509_free>>;

[[noreturn]] void openssl_fail(const std::string& what) {
  char buf[256] = "unknown error";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
  fail("troupe keys: {}: {}", what, buf);
}

Key new_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) openssl_fail("cannot generate an EC P-256 key");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext || !X509_add_ext(cert, ext, -1)) openssl_fail(std::string("cannot add extension ") + value);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` named `common_name`, signed by issuer/issuer_key (itself when null).
Cert new_certificate(EVP_PKEY* key, const std::string& common_name, X509* issuer, EVP_PKEY* issuer_key, int days,
                     bool is_ca, const char* extended_usage) {
  Cert cert(X509_new());
  unsigned char serial[16];
  if (!cert || RAND_bytes(serial, sizeof serial) != 1) openssl_fail("cannot start a certificate");
  serial[0] &= 0x7f;  // a positive serial
  std::unique_ptr<BIGNUM, Deleter<BN_free>> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  X509_set_version(cert.get(), 2);
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()))) openssl_fail("cannot set a serial");
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // an hour of clock skew between hosts
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(days) * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("troupe cluster"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                             -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  add_extension(cert.get(), signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(cert.get(), signer, NID_key_usage,
                is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyAgreement");
  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (extended_usage) add_extension(cert.get(), signer, NID_ext_key_usage, extended_usage);
  if (!X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256())) openssl_fail("cannot sign " + common_name);
  return cert;
}

// Opens `path` for a new file (never an existing one) with `mode`.
FILE* create_file(const std::filesystem::path& path, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) fail("troupe keys: cannot create {}: {}", path.string(), std::strerror(errno));
  ::fchmod(fd, mode);  // whatever the umask
  FILE* f = ::fdopen(fd, "w");
  if (!f) fail("troupe keys: cannot open {}", path.string());
  return f;
}

void write_pair(const std::filesystem::path& out, const std::string& stem, EVP_PKEY* key, X509* cert,
                std::vector<std::string>& lines) {
  const auto key_path = out / (stem + ".key"), cert_path = out / (stem + ".pem");
  FILE* k = create_file(key_path, 0600);
  const bool key_ok = PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (std::fclose(k) != 0 || !key_ok) openssl_fail("cannot write " + key_path.string());
  FILE* c = create_file(cert_path, 0644);
  const bool cert_ok = PEM_write_X509(c, cert) == 1;
  if (std::fclose(c) != 0 || !cert_ok) openssl_fail("cannot write " + cert_path.string());
  lines.push_back("wrote " + cert_path.string() + " and " + key_path.filename().string());
}

template <typename T, auto Read>
T read_pem(const std::filesystem::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) fail("troupe keys: cannot read {}", path.string());
  T value(Read(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!value) openssl_fail("cannot parse " + path.string());
  return value;
}

}  // namespace

std::vector<std::string> make_cluster_keys(const ClusterKeyOptions& o) {
  if (o.days < 1 || o.days > 36500) fail("troupe keys: --days {} is not in 1..36500", o.days);
  for (const auto& name : o.clients)
    if (name.empty() || name.size() > 64 || name == "ca" || name == "node" ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos)
      fail("troupe keys: client name '{}' must be 1..64 of [A-Za-z0-9_-], not 'ca' or 'node'", name);
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) fail("troupe keys: cannot create {}: {}", o.out.string(), ec.message());
  ::chmod(o.out.c_str(), 0700);

  std::vector<std::string> lines;
  Key ca_key;
  Cert ca;
  if (std::filesystem::exists(o.out / "ca.pem") || std::filesystem::exists(o.out / "ca.key")) {
    ca = read_pem<Cert, PEM_read_X509>(o.out / "ca.pem");
    ca_key = read_pem<Key, PEM_read_PrivateKey>(o.out / "ca.key");
    if (X509_check_private_key(ca.get(), ca_key.get()) != 1) openssl_fail("ca.key does not belong to ca.pem");
    lines.push_back("kept " + (o.out / "ca.pem").string());
  } else {
    ca_key = new_key();
    ca = new_certificate(ca_key.get(), "troupe cluster CA", nullptr, nullptr, 3650, true, nullptr);
    write_pair(o.out, "ca", ca_key.get(), ca.get(), lines);
  }
  auto issue = [&](const std::string& stem, const char* usage) {
    if (std::filesystem::exists(o.out / (stem + ".pem")) || std::filesystem::exists(o.out / (stem + ".key"))) {
      lines.push_back("kept " + (o.out / (stem + ".pem")).string());
      return;
    }
    Key key = new_key();
    Cert cert = new_certificate(key.get(), "troupe " + stem, ca.get(), ca_key.get(), o.days, false, usage);
    write_pair(o.out, stem, key.get(), cert.get(), lines);
  };
  issue("node", "serverAuth,clientAuth");
  for (const auto& name : o.clients) issue(name, "clientAuth");
  return lines;
}

}  // namespace troupe
