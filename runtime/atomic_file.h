// Writing a file so that readers see either the old contents or the complete
// new ones, never a torn mix: write `path.tmp`, fsync it, rename it over
// `path`, fsync the directory. On failure the temporary file is removed and
// `path` is untouched.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace baton {

// The file's contents are the parts, in order (e.g. a header and a payload).
Status WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& parts);
inline Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  return WriteFileAtomically(path, std::vector<std::string_view>{bytes});
}

// fsync of a directory: makes the creation, rename or removal of its entries durable.
Status SyncDirectory(const std::string& dir);

}  // namespace baton
