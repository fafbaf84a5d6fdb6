// Ackley as a wasmeval objective run function in AssemblyScript.
//
// AssemblyScript has no WIT bindings generator, so this file is the canonical-ABI lowering of
// wasmeval's `objective` world (wit/objective.wit) by hand: it exports `run`, `cabi_realloc`
// and `cabi_post_run` and imports `log` and `id` from the `job` interface. Built with the stub
// runtime (a bump allocator: every instance serves one job), it imports nothing else; wasmeval
// componentizes it at load.
import { evaluate } from "./objective";

@external("wasmeval:objective/job@0.1.0", "log")
declare function jobLog(ptr: usize, len: usize): void;

// `id: func() -> string`: the host writes the string's pointer and length at `ret`.
@external("wasmeval:objective/job@0.1.0", "id")
declare function jobId(ret: usize): void;

/** The job id, "<search>.<n>". */
function id(): string {
  const ret = memory.data(8, 4);
  jobId(ret);
  return String.UTF8.decodeUnsafe(load<u32>(ret), load<u32>(ret, 4));
}

/** Writes a line to the job's log. */
function log(message: string): void {
  const bytes = String.UTF8.encode(message);
  jobLog(changetype<usize>(bytes), bytes.byteLength);
}

export function cabi_realloc(old: usize, oldSize: usize, align: usize, newSize: usize): usize {
  const fresh = heap.alloc(newSize > 0 ? newSize : 1);
  if (old != 0) memory.copy(fresh, old, min(oldSize, newSize));
  return fresh;
}

// result<string, string>: a tag byte, then the string's pointer and length (12 bytes).
const returnArea = memory.data(12, 4);

export function run(ptr: usize, len: usize): usize {
  const result = evaluate(String.UTF8.decodeUnsafe(ptr, len));
  if (!result.failed) log("ackley in AssemblyScript, job " + id());
  const text = String.UTF8.encode(result.text);
  store<u8>(returnArea, result.failed ? 1 : 0);
  store<u32>(returnArea, <u32>changetype<usize>(text), 4);
  store<u32>(returnArea, <u32>text.byteLength, 8);
  return returnArea;
}

export function cabi_post_run(area: usize): void {}
