#include "runtime/status.h"

#include "runtime/log.h"

namespace baton {

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: name = "invalid argument"; break;
    case Code::kNotFound: name = "not found"; break;
    case Code::kCorruption: name = "corruption"; break;
    case Code::kIOError: name = "I/O error"; break;
    case Code::kUnimplemented: name = "not implemented"; break;
    case Code::kInternal: name = "internal error"; break;
  }
  return std::string(name) + ": " + msg_;
}

void CheckFailed(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "%sinternal check failed at %s:%d: %s%s%s\n", LogPrefix().c_str(), file, line, cond,
               msg.empty() ? "" : ": ", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace baton
