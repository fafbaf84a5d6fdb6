// Ackley in n dimensions, as a wasmeval run function in C++.
//
// Configuration: {"x": [x1, x2, ...]}; result: -ackley(x) (DeepHyper maximizes).
// An empty or missing "x" is an error: the job fails with that message.
//
// Built two ways from this one file (see build.sh): an objective run function through
// wasmeval.h (default), and a WASI command (-DWASMEVAL_COMMAND: stdin to stdout).
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

namespace {

// The numbers of the top-level "x" list, or nothing when there is none.
std::optional<std::vector<double>> read_x(const std::string &config) {
    auto at = config.find("\"x\"");
    if (at == std::string::npos) return std::nullopt;
    at = config.find_first_not_of(" \t\r\n:", at + 3);
    if (at == std::string::npos || config[at] != '[') return std::nullopt;
    std::vector<double> x;
    const char *p = config.c_str() + at + 1;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ',') ++p;
        if (*p == ']') return x;
        char *end = nullptr;
        double v = std::strtod(p, &end);
        if (end == p) return std::nullopt;
        x.push_back(v);
        p = end;
    }
}

double ackley(const std::vector<double> &x) {
    const double n = static_cast<double>(x.size());
    double sum_sq = 0, sum_cos = 0;
    for (double v : x) {
        sum_sq += v * v;
        sum_cos += std::cos(2 * M_PI * v);
    }
    return -20 * std::exp(-0.2 * std::sqrt(sum_sq / n)) - std::exp(sum_cos / n) + 20 + M_E;
}

struct Evaluation {
    double objective = 0;
    const char *error = nullptr;
};

Evaluation evaluate(const std::string &config) {
    auto x = read_x(config);
    if (!x) return {0, "x must be a list of numbers"};
    if (x->empty()) return {0, "x must hold at least one coordinate"};
    return {-ackley(*x), nullptr};
}

}  // namespace

#ifdef WASMEVAL_COMMAND

int main() {
    std::string config(std::istreambuf_iterator<char>(std::cin), {});
    Evaluation e = evaluate(config);
    if (e.error) {
        std::cerr << e.error << '\n';
        return 1;
    }
    std::cout.precision(17);
    std::cout << e.objective << '\n';
    return 0;
}

#else

#define WASMEVAL_IMPLEMENTATION
#include "wasmeval.h"

extern "C" int wasmeval_run(const char *config, size_t len, wasmeval_string *out) {
    Evaluation e = evaluate(std::string(config, len));
    if (e.error) return wasmeval_err(out, "%s", e.error);
    return wasmeval_ok(out, "%.17g", e.objective);
}

#endif
