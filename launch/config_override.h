// `--set path.to.field=value`: changes one field of a RunConfig by name,
// through protobuf reflection, so that every field (present and future) can
// be overridden without a hand-written flag.
#pragma once

#include <string>

#include <google/protobuf/message.h>

#include "proto/config.pb.h"
#include "runtime/status.h"

namespace baton {

// Applies "model.hidden=256", "optim.lr_schedule=COSINE", "data.train=a/*.bin",
// "optim.scale_parameter=false". Values: integers in range, numbers, bools
// (true/false/1/0), strings taken verbatim, enum names (case-insensitive).
// A repeated scalar field takes "1,2,3" and replaces the whole list ("" empties
// it). Errors read `--set model.hidden=abc: model.hidden is an int32, got "abc"`.
// Does not validate ranges: LoadRunConfig validates after all overrides, so
// that one override may rely on a later one.
Status ApplyOverride(RunConfig* config, const std::string& assignment);

// The same on any message; ApplyOverride is this on a RunConfig.
Status ApplyOverrideToMessage(google::protobuf::Message* message, const std::string& assignment);

}  // namespace baton
