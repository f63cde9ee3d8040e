#include "model/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kernels/error.hpp"

namespace troupe {

MappedFile map_file_read_only(const std::filesystem::path& path, std::string_view kind) {
  const std::string file = path.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open {} file {}: {}", kind, file, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot stat {}: {}", file, std::strerror(err));
  }
  const size_t size = size_t(st.st_size);
  if (size == 0) {
    ::close(fd);
    return {};
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (map == MAP_FAILED) fail("cannot mmap {}: {}", file, std::strerror(err));
  return {std::shared_ptr<void>(map, [size](void* p) { ::munmap(p, size); }),
          std::string_view(static_cast<const char*>(map), size)};
}

}  // namespace troupe
