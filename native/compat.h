// The one place where libtorch versions differ at compile time. Every native file
// that touches an API whose shape changed between 1.13 and 2.x goes through here,
// so a new engine version means editing this file, not hunting through the others.
#pragma once

#include <ATen/ATen.h>
// 1.13 pulled GradMode in through ATen.h; 2.x does not.
#include <ATen/core/grad_mode.h>
#include <torch/version.h>  // TORCH_VERSION_MAJOR / _MINOR (present in 1.13 and 2.x)
#include <ATen/core/function_schema.h>

#include <string>

#define TN_TORCH_AT_LEAST(MAJOR, MINOR) \
  (TORCH_VERSION_MAJOR > (MAJOR) || (TORCH_VERSION_MAJOR == (MAJOR) && TORCH_VERSION_MINOR >= (MINOR)))

namespace tn::compat {

// TCPStoreOptions::useLibUV exists from 2.2 and defaults to true from 2.4, but
// builds without libuv (Debian's) then refuse every store. Ask for the classic
// socket backend wherever the option exists; 1.13 only has that one.
template <typename Options>
auto DisableLibUV(Options& opts, int) -> decltype(opts.useLibUV = false, void()) {
  opts.useLibUV = false;
}
template <typename Options>
void DisableLibUV(Options&, long) {}
template <typename Options>
void UseClassicTCPStore(Options& opts) { DisableLibUV(opts, 0); }

// The type an argument really has. 2.x schemas give SymInt arguments the fake type
// `int` and the real type `SymInt` (and ScalarType, Layout, MemoryFormat the fake
// type `int`); 1.13 has real_type() too, with the same meaning. One place to change
// should a later version rename it.
inline const c10::TypePtr& RealType(const c10::Argument& a) { return a.real_type(); }

// "1.13.0", "2.6.0": the loaded engine's version, for "op X is not in libtorch V".
inline std::string TorchVersion() { return TORCH_VERSION; }

}  // namespace tn::compat
