// A model file's bytes, read-only: mapped (the default: weights are used in place, or
// repacked from it at load time, and never copied into the JS heap) or read into memory.
//
// A mapping reads the file lazily: if another process truncates or rewrites the file while
// the model is loaded, touching a page past the new end raises SIGBUS, which ends the
// process (no status can report it). Loading with mmap: false reads every byte up front
// and never touches the file again.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/load_control.h"
#include "core/status.h"

namespace tessera {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Opens `path` and learns its size. Refuses anything but a regular file (a FIFO, device
  // or directory), without blocking.
  Status open(const std::string& path);
  // Then maps the file, or (map false) reads all of it, advancing `control` per chunk and
  // stopping once it is aborted. Closes the descriptor either way.
  Status load(bool map, LoadControl* control);

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

  // Bytes between progress reports (and cancellation checks) while reading.
  static constexpr uint64_t kReadChunk = uint64_t(16) << 20;

 private:
  Status read_all(LoadControl* control);
  void close_fd();
  void release();

  std::string path_;
  int fd_ = -1;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
};

}  // namespace tessera
