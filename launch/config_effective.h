// The effective configuration of a run, written to run_dir/config.pbtxt so
// that a run can be understood (and repeated) without knowing the defaults
// of the build that ran it.
#pragma once

#include <string>

#include "proto/config.pb.h"

namespace baton {

// Text format with every field written, defaults included, recursively.
// Parsing it back gives a message equal to `config` with all fields set.
std::string EffectiveConfigText(const RunConfig& config);

// objective.kind with FAMILY_DEFAULT resolved: CAUSAL_LM for GPT families, MASKED_LM for RoFormer.
ObjectiveConfig::Kind EffectiveObjective(const RunConfig& config);

}  // namespace baton
