/*
 * wasmeval.h: write wasmeval run functions in C, C++ or Zig (through @cImport).
 *
 * A run function receives one configuration (a JSON object, as text) and returns its result as
 * JSON text (a number, a list of numbers, or {"objective": ..., "metadata": {...}}) or an error
 * message. Write it as
 *
 *     #define WASMEVAL_IMPLEMENTATION   // in exactly one source file
 *     #include "wasmeval.h"
 *
 *     int wasmeval_run(const char *config, size_t len, wasmeval_string *out) {
 *         if (len == 2) return wasmeval_err(out, "empty configuration");
 *         wasmeval_job_log("evaluating");
 *         return wasmeval_ok(out, "%.17g", 42.0);
 *     }
 *
 * and build a WASI reactor core module:
 *
 *     clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -o f.wasm f.c
 *
 * This header is the canonical-ABI lowering of wasmeval's WIT world (wit/objective.wit): it
 * exports `run`, `cabi_realloc` and `cabi_post_run`, and imports the `job` interface from
 * `wasmeval:objective/job@0.1.0`. wasmeval turns such a core module into a component when it
 * loads it (`wasmeval inspect f.wasm` says so): no wit-bindgen or wasm-tools is needed. A module
 * that calls none of the `wasmeval_job_*` functions imports nothing from the host.
 *
 * Memory comes from malloc; every instance is fresh and lives for one job.
 */
#ifndef WASMEVAL_H
#define WASMEVAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* UTF-8 text of a given length (not NUL-terminated unless said). */
typedef struct {
    char *ptr;
    size_t len;
} wasmeval_string;

/* Return values of wasmeval_run. */
#define WASMEVAL_OK 0
#define WASMEVAL_ERR 1

/*
 * The run function you write. `config` is the configuration's JSON text, NUL-terminated
 * (`len` bytes before the NUL). Put the result JSON (WASMEVAL_OK) or an error message
 * (WASMEVAL_ERR) in `*out`, in memory from malloc: wasmeval_ok / wasmeval_err do it for you.
 * An error makes the job fail with "F_guest_error" and the message in its metadata.
 */
int wasmeval_run(const char *config, size_t len, wasmeval_string *out);

/* Formats the result JSON into *out (printf style); returns WASMEVAL_OK. */
int wasmeval_ok(wasmeval_string *out, const char *format, ...);
/* Formats an error message into *out (printf style); returns WASMEVAL_ERR. */
int wasmeval_err(wasmeval_string *out, const char *format, ...);

/* The job interface (imported from the host only if called). */
/* The job id, "<search>.<n>"; free(result.ptr) when done. NUL-terminated. */
wasmeval_string wasmeval_job_id(void);
/* The evaluator's run-function kwargs as a JSON object; free(result.ptr). NUL-terminated. */
wasmeval_string wasmeval_job_kwargs(void);
/* An intermediate objective at `budget` (multi-fidelity); at most 10,000 per job. */
void wasmeval_job_record(double budget, double objective);
/* True once the job should stop early (deadline near, cancelled, or closing). */
bool wasmeval_job_stopped(void);
/* A line for the job's log (NUL-terminated). */
void wasmeval_job_log(const char *message);

#ifdef __cplusplus
}
#endif

#ifdef WASMEVAL_IMPLEMENTATION

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WASMEVAL_JOB_IMPORT(name) \
    __attribute__((import_module("wasmeval:objective/job@0.1.0"), import_name(name)))

#ifdef __cplusplus
extern "C" {
#endif

WASMEVAL_JOB_IMPORT("id") void wasmeval_import_id(wasmeval_string *ret);
WASMEVAL_JOB_IMPORT("kwargs") void wasmeval_import_kwargs(wasmeval_string *ret);
WASMEVAL_JOB_IMPORT("record") void wasmeval_import_record(double budget, double objective);
WASMEVAL_JOB_IMPORT("stopped") int32_t wasmeval_import_stopped(void);
WASMEVAL_JOB_IMPORT("log") void wasmeval_import_log(const char *ptr, size_t len);

/* Allocation for strings the host passes in (canonical ABI). */
__attribute__((export_name("cabi_realloc"))) void *wasmeval_cabi_realloc(void *ptr, size_t old_size,
                                                                       size_t align, size_t new_size) {
    (void)old_size;
    (void)align; /* malloc's alignment (16) covers every canonical-ABI type */
    if (new_size == 0) new_size = 1;
    void *p = realloc(ptr, new_size);
    if (!p) abort();
    return p;
}

/* The return area of `run`: result<string, string> is a tag and a string. */
static struct {
    uint8_t is_err;
    wasmeval_string text;
} wasmeval_return_area;

__attribute__((export_name("run"))) void *wasmeval_export_run(char *ptr, size_t len) {
    char *config = (char *)wasmeval_cabi_realloc(ptr, len, 1, len + 1);
    config[len] = '\0';
    wasmeval_string out = {NULL, 0};
    int rc = wasmeval_run(config, len, &out);
    free(config);
    wasmeval_return_area.is_err = rc != WASMEVAL_OK;
    wasmeval_return_area.text = out;
    return &wasmeval_return_area;
}

__attribute__((export_name("cabi_post_run"))) void wasmeval_export_post_run(void *area) {
    (void)area;
    free(wasmeval_return_area.text.ptr);
    wasmeval_return_area.text.ptr = NULL;
}

static int wasmeval_format(wasmeval_string *out, int rc, const char *format, va_list args) {
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(NULL, 0, format, args);
    if (n < 0) n = 0;
    out->ptr = (char *)malloc((size_t)n + 1);
    if (!out->ptr) abort();
    vsnprintf(out->ptr, (size_t)n + 1, format, again);
    va_end(again);
    out->len = (size_t)n;
    return rc;
}

int wasmeval_ok(wasmeval_string *out, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int rc = wasmeval_format(out, WASMEVAL_OK, format, args);
    va_end(args);
    return rc;
}

int wasmeval_err(wasmeval_string *out, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int rc = wasmeval_format(out, WASMEVAL_ERR, format, args);
    va_end(args);
    return rc;
}

static wasmeval_string wasmeval_terminated(wasmeval_string s) {
    s.ptr = (char *)wasmeval_cabi_realloc(s.ptr, s.len, 1, s.len + 1);
    s.ptr[s.len] = '\0';
    return s;
}

wasmeval_string wasmeval_job_id(void) {
    wasmeval_string s = {NULL, 0};
    wasmeval_import_id(&s);
    return wasmeval_terminated(s);
}

wasmeval_string wasmeval_job_kwargs(void) {
    wasmeval_string s = {NULL, 0};
    wasmeval_import_kwargs(&s);
    return wasmeval_terminated(s);
}

void wasmeval_job_record(double budget, double objective) { wasmeval_import_record(budget, objective); }

bool wasmeval_job_stopped(void) { return wasmeval_import_stopped() != 0; }

void wasmeval_job_log(const char *message) { wasmeval_import_log(message, strlen(message)); }

#ifdef __cplusplus
}
#endif

#endif /* WASMEVAL_IMPLEMENTATION */
#endif /* WASMEVAL_H */
