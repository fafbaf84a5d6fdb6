/*
 * Ackley in n dimensions, as a wasmeval run function in C.
 *
 * Configuration: {"x": [x1, x2, ...]}; result: -ackley(x) (DeepHyper maximizes).
 * An empty or missing "x" is an error: the job fails with that message.
 *
 * Built two ways from this one file (see build.sh):
 *   - an objective run function (default): `wasmeval.h` exports `run`, the host componentizes it;
 *   - a WASI command (-DWASMEVAL_COMMAND): configuration on stdin, objective on stdout.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIMENSIONS 1024

/* Reads the numbers of the top-level "x" list into x; returns how many, or -1 if there is none. */
static int read_x(const char *config, double *x) {
    const char *p = strstr(config, "\"x\"");
    if (!p) return -1;
    p += 3;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':') p++;
    if (*p != '[') return -1;
    p++;
    int n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') p++;
        if (*p == ']') return n;
        char *end;
        double v = strtod(p, &end);
        if (end == p || n == MAX_DIMENSIONS) return -1;
        x[n++] = v;
        p = end;
    }
}

static double ackley(const double *x, int n) {
    double sum_sq = 0, sum_cos = 0;
    for (int i = 0; i < n; i++) {
        sum_sq += x[i] * x[i];
        sum_cos += cos(2 * M_PI * x[i]);
    }
    return -20 * exp(-0.2 * sqrt(sum_sq / n)) - exp(sum_cos / n) + 20 + M_E;
}

/* The objective, or NULL with an error message in *error. */
static const char *evaluate(const char *config, double *objective) {
    double x[MAX_DIMENSIONS];
    int n = read_x(config, x);
    if (n < 0) return "x must be a list of numbers";
    if (n == 0) return "x must hold at least one coordinate";
    *objective = -ackley(x, n);
    return NULL;
}

#ifdef WASMEVAL_COMMAND

int main(void) {
    static char config[1 << 16];
    size_t len = fread(config, 1, sizeof config - 1, stdin);
    config[len] = '\0';
    double objective;
    const char *error = evaluate(config, &objective);
    if (error) {
        fprintf(stderr, "%s\n", error);
        return 1;
    }
    printf("%.17g\n", objective);
    return 0;
}

#else

#define WASMEVAL_IMPLEMENTATION
#include "wasmeval.h"

int wasmeval_run(const char *config, size_t len, wasmeval_string *out) {
    (void)len;
    double objective;
    const char *error = evaluate(config, &objective);
    if (error) return wasmeval_err(out, "%s", error);
    wasmeval_string id = wasmeval_job_id();
    char line[128];
    snprintf(line, sizeof line, "ackley in C, job %s", id.ptr);
    free(id.ptr);
    wasmeval_job_log(line);
    return wasmeval_ok(out, "%.17g", objective);
}

#endif
