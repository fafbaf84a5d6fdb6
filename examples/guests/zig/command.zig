//! Ackley as a WASI command in Zig: the configuration on stdin, the objective on stdout, an
//! error on stderr with exit code 1.
const std = @import("std");
const objective = @import("objective.zig");

pub fn main(init: std.process.Init) !void {
    var in_buffer: [4096]u8 = undefined;
    var stdin = std.Io.File.stdin().readerStreaming(init.io, &in_buffer);
    const config = try stdin.interface.allocRemaining(init.arena.allocator(), .limited(1 << 20));
    switch (objective.evaluate(init.arena.allocator(), config)) {
        .err => |message| {
            var err_buffer: [256]u8 = undefined;
            var stderr = std.Io.File.stderr().writerStreaming(init.io, &err_buffer);
            try stderr.interface.print("{s}\n", .{message});
            try stderr.interface.flush();
            std.process.exit(1);
        },
        .objective => |value| {
            var out_buffer: [256]u8 = undefined;
            var stdout = std.Io.File.stdout().writerStreaming(init.io, &out_buffer);
            try stdout.interface.print("{e}\n", .{value});
            try stdout.interface.flush();
        },
    }
}
