// `baton train --help-config`: the reference of every RunConfig field, made
// from the proto itself so that it cannot drift from what the loader accepts.
#pragma once

#include <string>

namespace baton {

// One line per leaf field, in declaration order:
//   model.layers          int32, default 12, at least 1: number of transformer blocks
// (path, type with enum values listed, default, allowed range, help text).
std::string ConfigFieldsHelp();

}  // namespace baton
