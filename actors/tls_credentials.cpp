#include "actors/tls_credentials.hpp"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/error.hpp"

namespace troupe {

void check_tls_credentials(const TlsCredentials& tls, const std::string& who) {
  for (const auto& [what, path] :
       {std::pair{"CA file", &tls.ca_file}, {"certificate file", &tls.cert_file}, {"key file", &tls.key_file}}) {
    struct stat st {};
    if (path->empty()) fail("{}: the {} is not set", who, what);
    if (::stat(path->c_str(), &st) != 0 || !S_ISREG(st.st_mode) || ::access(path->c_str(), R_OK) != 0)
      fail("{}: the {} {} is not a readable file", who, what, path->string());
    if (path == &tls.key_file && (st.st_mode & 077))
      fail("{}: the key file {} is accessible to group or others (mode {:o}): refusing to use it; chmod 600 it", who,
           path->string(), st.st_mode & 0777);
  }
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

}  // namespace troupe
