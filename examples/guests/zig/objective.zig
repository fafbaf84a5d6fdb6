//! Ackley in n dimensions, shared by the objective run function (ackley.zig) and the WASI
//! command (command.zig).
//!
//! Configuration: {"x": [x1, x2, ...]}; result: -ackley(x) (DeepHyper maximizes).
//! An empty or missing "x" is an error.
const std = @import("std");

/// The objective, or why there is none.
pub const Evaluation = union(enum) {
    objective: f64,
    err: []const u8,
};

const Config = struct { x: []const f64 };

fn ackley(x: []const f64) f64 {
    const n: f64 = @floatFromInt(x.len);
    var sum_sq: f64 = 0;
    var sum_cos: f64 = 0;
    for (x) |v| {
        sum_sq += v * v;
        sum_cos += @cos(2 * std.math.pi * v);
    }
    return -20 * @exp(-0.2 * @sqrt(sum_sq / n)) - @exp(sum_cos / n) + 20 + std.math.e;
}

/// Evaluates a configuration given as JSON text.
pub fn evaluate(arena: std.mem.Allocator, config: []const u8) Evaluation {
    const parsed = std.json.parseFromSliceLeaky(Config, arena, config, .{ .ignore_unknown_fields = true }) catch
        return .{ .err = "x must be a list of numbers" };
    if (parsed.x.len == 0) return .{ .err = "x must hold at least one coordinate" };
    return .{ .objective = -ackley(parsed.x) };
}
