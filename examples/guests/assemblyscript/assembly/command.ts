// Ackley as a WASI command in AssemblyScript (through @assemblyscript/wasi-shim): the
// configuration on stdin, the objective on stdout, an error on stderr with exit code 1.
import { evaluate } from "./objective";

const buffer = new ArrayBuffer(1 << 16);
let length = 0;
for (;;) {
  const n = process.stdin.read(buffer, length);
  if (n <= 0) break;
  length += n;
}
const result = evaluate(String.UTF8.decode(buffer.slice(0, length)));
if (result.failed) {
  process.stderr.write(result.text + "\n");
  process.exit(1);
}
process.stdout.write(result.text + "\n");
