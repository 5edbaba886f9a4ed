// Precompiled header: the heavy, stable headers every native file needs.
// ATen alone, not torch/torch.h: the C++ frontend (nn, optim, data) is not used
// by the addon and doubles the parse time of every translation unit.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>
