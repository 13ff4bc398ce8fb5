#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tessera {

MappedFile::~MappedFile() {
  if (data_) munmap(data_, size_);
}

Status MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error(StatusCode::Io, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::error(StatusCode::Io, "cannot stat " + path + ": " + std::strerror(err));
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    return Status::error(StatusCode::Io, path + " is empty");
  }
  void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) {
    size_ = 0;
    return Status::error(err == ENOMEM ? StatusCode::OutOfMemory : StatusCode::Io,
                         "cannot map " + path + ": " + std::strerror(err));
  }
  data_ = static_cast<uint8_t*>(p);
  return Status::ok();
}

}  // namespace tessera
