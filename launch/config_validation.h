// Checks a RunConfig before any work starts: every field against its
// (baton.min)/(baton.max) annotation, then the rules that tie fields together
// (heads divide hidden, seq_len fits max_positions, what this build runs).
#pragma once

#include <string>

#include <google/protobuf/message.h>

#include "proto/config.pb.h"
#include "runtime/status.h"

namespace baton {

// Reports every problem at once, one line each, each starting with `source`
// (the config path): `configs/x.pbtxt: optim.lr = -0.1 is below the minimum 0`.
// Fields that are not set are checked at their default value.
Status ValidateRunConfig(const RunConfig& config, const std::string& source);

// Only the (baton.min)/(baton.max) ranges and finiteness, on any message; one
// line per problem appended to `problems`, each starting with `source`.
void CheckConfigRanges(const google::protobuf::Message& message, const std::string& source, std::string* problems);

}  // namespace baton
