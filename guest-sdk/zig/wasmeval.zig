//! wasmeval.zig: write wasmeval run functions in Zig.
//!
//! The canonical-ABI lowering of wasmeval's WIT world (wit/objective.wit) in Zig: this file
//! exports `run`, `cabi_realloc` and `cabi_post_run`, and imports the `job` interface from
//! `wasmeval:objective/job@0.1.0`. wasmeval turns the core module into a component when it
//! loads it, so no wit-bindgen or wasm-tools is needed. Write your run function in the root
//! source file as
//!
//!     const wasmeval = @import("wasmeval");
//!     comptime { wasmeval.exportRun(run); }
//!
//!     fn run(arena: std.mem.Allocator, config: []const u8) wasmeval.Result {
//!         return .{ .ok = std.fmt.allocPrint(arena, "{d}", .{42.0}) catch return .{ .err = "out of memory" } };
//!     }
//!
//! and build a freestanding module (no WASI at all):
//!
//!     zig build-exe -target wasm32-freestanding -O ReleaseSmall -fno-entry -rdynamic \
//!       --dep wasmeval -Mroot=ackley.zig -Mwasmeval=wasmeval.zig
//!
//! Memory: `arena` lives for the job (every instance is fresh and serves one job).
const std = @import("std");

/// What a run function returns: the result JSON, or an error message (the job fails with
/// "F_guest_error" and the message in its metadata).
pub const Result = union(enum) {
    ok: []const u8,
    err: []const u8,
};

/// A run function: the configuration's JSON text in, a result out; `arena` is for the job.
pub const RunFn = fn (arena: std.mem.Allocator, config: []const u8) Result;

var arena_state = std.heap.ArenaAllocator.init(std.heap.wasm_allocator);

/// The allocator for the job.
pub fn allocator() std.mem.Allocator {
    return arena_state.allocator();
}

const job = struct {
    extern "wasmeval:objective/job@0.1.0" fn id(ret: *[2]usize) void;
    extern "wasmeval:objective/job@0.1.0" fn kwargs(ret: *[2]usize) void;
    extern "wasmeval:objective/job@0.1.0" fn record(budget: f64, objective: f64) void;
    extern "wasmeval:objective/job@0.1.0" fn stopped() i32;
    extern "wasmeval:objective/job@0.1.0" fn log(ptr: [*]const u8, len: usize) void;
};

fn slice(ret: [2]usize) []const u8 {
    return @as([*]const u8, @ptrFromInt(ret[0]))[0..ret[1]];
}

/// The job id, "<search>.<n>".
pub fn jobId() []const u8 {
    var ret: [2]usize = undefined;
    job.id(&ret);
    return slice(ret);
}

/// The evaluator's run-function kwargs, as a JSON object.
pub fn jobKwargs() []const u8 {
    var ret: [2]usize = undefined;
    job.kwargs(&ret);
    return slice(ret);
}

/// An intermediate objective at `budget` (multi-fidelity); at most 10,000 per job.
pub fn record(budget: f64, objective: f64) void {
    job.record(budget, objective);
}

/// True once the job should stop early (deadline near, cancelled, or closing).
pub fn stopped() bool {
    return job.stopped() != 0;
}

/// A line for the job's log.
pub fn log(message: []const u8) void {
    job.log(message.ptr, message.len);
}

/// Allocation for strings the host passes in (canonical ABI).
fn cabiRealloc(old: ?[*]u8, old_len: usize, alignment: usize, new_len: usize) callconv(.c) ?[*]u8 {
    _ = alignment; // the arena aligns to 16, enough for every canonical-ABI type
    const a = allocator();
    const fresh = a.alloc(u8, @max(new_len, 1)) catch @panic("out of memory");
    if (old) |p| @memcpy(fresh[0..@min(old_len, new_len)], p[0..@min(old_len, new_len)]);
    return fresh.ptr;
}

var return_area: extern struct { is_err: u32, ptr: usize, len: usize } = undefined;

/// Exports `run` (and the canonical-ABI helpers) calling `f`.
pub fn exportRun(comptime f: RunFn) void {
    const glue = struct {
        fn run(ptr: [*]const u8, len: usize) callconv(.c) *anyopaque {
            const result = f(allocator(), ptr[0..len]);
            const text = switch (result) {
                .ok => |t| t,
                .err => |t| t,
            };
            return_area = .{
                .is_err = @intFromBool(result == .err),
                .ptr = @intFromPtr(text.ptr),
                .len = text.len,
            };
            return &return_area;
        }
        fn postRun(area: *anyopaque) callconv(.c) void {
            _ = area;
        }
    };
    @export(&glue.run, .{ .name = "run" });
    @export(&glue.postRun, .{ .name = "cabi_post_run" });
    @export(&cabiRealloc, .{ .name = "cabi_realloc" });
}
