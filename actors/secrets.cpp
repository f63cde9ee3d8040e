#include "actors/secrets.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "kernels/error.hpp"

namespace troupe {

std::string read_secret_file(const std::filesystem::path& path, const std::string& where) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) fail("{}: {} is not a readable file", where, path.string());
  if (st.st_mode & 077)
    fail("{}: {} is accessible to group or others (mode {:o}): refusing to use it as a secret; chmod 600 it", where,
         path.string(), st.st_mode & 0777);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string secret = text.str();
  secret.erase(secret.find_last_not_of(" \t\r\n") + 1);
  if (secret.empty()) fail("{}: {} holds no secret", where, path.string());
  return secret;
}

}  // namespace troupe
