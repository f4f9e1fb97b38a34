// A POSIX file descriptor closed on every return path, and errno as text, for
// the readers of binary files (token shards, checkpoint shards).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace baton {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

inline std::string ErrnoText() { return std::strerror(errno); }

}  // namespace baton
