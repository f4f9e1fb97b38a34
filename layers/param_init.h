// Weight initialisation from the counter-based RNG: element i of parameter
// "name" gets NormalAt(seed, StreamId(name), i), so a parameter has the same
// values whichever rank or stage builds it.
#pragma once

#include <cstdint>

#include "layers/param.h"

namespace baton {

void InitNormal(Param* p, uint64_t seed, double std);
void InitConstant(Param* p, double value);

}  // namespace baton
