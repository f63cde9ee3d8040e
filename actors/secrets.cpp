#include "actors/secrets.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "actors/limits.hpp"
#include "kernels/error.hpp"

namespace troupe {

uint64_t random_nonce() {
  std::random_device source;
  return uint64_t(source()) << 32 | uint64_t(source());
}

std::string read_secret_file(const std::filesystem::path& path, const std::string& where) {
  // The mode is checked on the file that is read (fstat of the open descriptor), not on the path.
  // O_NONBLOCK: a FIFO planted under the name must not block the open.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    fail("{}: {} is not a readable file", where, path.string());
  }
  if (st.st_mode & 077) {
    ::close(fd);
    fail("{}: {} is accessible to group or others (mode {:o}): refusing to use it as a secret; chmod 600 it", where,
         path.string(), st.st_mode & 0777);
  }
  if (size_t(st.st_size) > limits::kMaxBlobBytes) {
    ::close(fd);
    fail("{}: {} holds {} bytes: a secret is at most {}", where, path.string(), st.st_size, limits::kMaxBlobBytes);
  }
  std::string secret(size_t(st.st_size), '\0');
  const ssize_t n = ::read(fd, secret.data(), secret.size());
  ::close(fd);
  secret.resize(n > 0 ? size_t(n) : 0);
  secret.erase(secret.find_last_not_of(" \t\r\n") + 1);
  if (secret.empty()) fail("{}: {} holds no secret", where, path.string());
  return secret;
}

}  // namespace troupe
