//! Ackley as a wasmeval objective run function in Zig (through guest-sdk/zig/wasmeval.zig).
const std = @import("std");
const wasmeval = @import("wasmeval");
const objective = @import("objective.zig");

comptime {
    wasmeval.exportRun(run);
}

fn run(arena: std.mem.Allocator, config: []const u8) wasmeval.Result {
    switch (objective.evaluate(arena, config)) {
        .err => |message| return .{ .err = message },
        .objective => |value| {
            const line = std.fmt.allocPrint(arena, "ackley in Zig, job {s}", .{wasmeval.jobId()});
            wasmeval.log(line catch "ackley in Zig");
            const text = std.fmt.allocPrint(arena, "{e}", .{value}) catch return .{ .err = "out of memory" };
            return .{ .ok = text };
        },
    }
}
