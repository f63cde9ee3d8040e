#pragma once
// A whole file mapped read-only into memory, for the checkpoint readers (SafetensorsFile,
// GgufFile): the bytes, and the owner that unmaps them when the last holder lets go (tensor views
// into the file keep it). An empty file maps to no bytes. Errors name `kind`, the file and errno.
#include <filesystem>
#include <memory>
#include <string_view>

namespace troupe {

struct MappedFile {
  std::shared_ptr<void> owner;  // unmaps on release; null for an empty file
  std::string_view bytes;
};

MappedFile map_file_read_only(const std::filesystem::path& path, std::string_view kind);

}  // namespace troupe
