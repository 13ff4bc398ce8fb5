#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/aligned_buffer.h"

namespace tessera {

MappedFile::~MappedFile() {
  close_fd();
  release();
}

void MappedFile::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void MappedFile::release() {
  if (data_ && mapped_) munmap(data_, size_);
  if (data_ && !mapped_) free_allocation(data_, size_);
  data_ = nullptr;
}

Status MappedFile::open(const std::string& path) {
  close_fd();
  release();
  path_ = path;
  size_ = 0;
  // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever if none
  // comes; with it the open returns at once and fstat refuses the FIFO. It changes nothing
  // for a regular file.
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) return Status::error(StatusCode::Io, "cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    const int err = errno;
    close_fd();
    return Status::error(StatusCode::Io, "cannot stat " + path + ": " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close_fd();
    return Status::error(StatusCode::Io, path + " is not a regular file (a directory, FIFO or device); pass a .gguf model file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) {
    close_fd();
    return Status::error(StatusCode::Io, path + " is empty");
  }
  return Status::ok();
}

Status MappedFile::load(bool map, LoadControl* control) {
  if (fd_ < 0) return Status::error(StatusCode::Internal, "MappedFile::load before open");
  if (!map) {
    Status s = read_all(control);
    close_fd();
    return s;
  }
  void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
  const int err = errno;
  close_fd();  // the mapping keeps the file alive
  if (p == MAP_FAILED)
    return Status::error(err == ENOMEM ? StatusCode::OutOfMemory : StatusCode::Io,
                         "cannot map " + path_ + ": " + std::strerror(err));
  data_ = static_cast<uint8_t*>(p);
  mapped_ = true;
  return Status::ok();
}

Status MappedFile::read_all(LoadControl* control) {
  // Streamed memory (huge pages from 4 MiB), as the kernels' own weight copies.
  uint8_t* buffer = allocate_streamed(size_);
  if (!buffer)
    return Status::error(StatusCode::OutOfMemory, "cannot allocate " + std::to_string(size_ >> 20) + " MiB to read " + path_ +
                                                      "; load it with mmap: true");
  data_ = buffer;
  mapped_ = false;
  for (uint64_t got = 0; got < size_;) {
    const uint64_t want = std::min(kReadChunk, size_ - got);
    uint64_t chunk = 0;
    while (chunk < want) {
      const ssize_t n = ::pread(fd_, buffer + got + chunk, want - chunk, off_t(got + chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        release();
        return Status::error(StatusCode::Io, n == 0 ? path_ + " became shorter while it was read; try again"
                                                    : "cannot read " + path_ + ": " + std::strerror(err));
      }
      chunk += uint64_t(n);
    }
    got += chunk;
    if (control) {
      Status s = control->advance(chunk);
      if (!s.is_ok()) {
        release();
        return s;
      }
    }
  }
  return Status::ok();
}

}  // namespace tessera
