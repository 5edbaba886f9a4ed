// The C++ floor for bench/op-overhead.js: the same small ops called from libtorch's
// C++ API, so the JS figures minus these are what the binding adds per call.
//   op_overhead CALLS   prints one JSON line of median-free ns per call (the JS side
//                       alternates rounds of this program with its own and takes medians)
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

template <typename F>
static double Time(F&& f, long n) {
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; i++) f();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(n);
}

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::atol(argv[1]) : 20000;
  at::set_num_threads(1);
  const at::Tensor x = torch::tensor({1.f, 2.f, 3.f, 4.f});
  auto add = [&] { at::Tensor y = x.add(1); };
  auto neg = [&] { at::Tensor y = x.neg(); };
  // The JS chain: add(1), mul(2), sub(1), neg(), five rounds; each result replaces the last.
  auto chain = [&] {
    at::Tensor t = x;
    for (int r = 0; r < 5; r++) t = t.add(1).mul(2).sub(1).neg();
  };
  Time(add, calls / 10);  // warm up
  Time(neg, calls / 10);
  Time(chain, calls / 200);
  const double a = Time(add, calls), n = Time(neg, calls), c = Time(chain, (calls + 19) / 20) / 20;
  std::printf("{\"add\": %.1f, \"neg\": %.1f, \"chain\": %.1f}\n", a, n, c);
  return 0;
}
