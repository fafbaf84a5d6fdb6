// Ackley in n dimensions, shared by the objective run function (ackley.ts) and the WASI
// command (command.ts).
//
// Configuration: {"x": [x1, x2, ...]}; result: -ackley(x) (DeepHyper maximizes).
// An empty or missing "x" is an error. AssemblyScript has no JSON in its standard library, so
// the "x" list is read by hand.

/** The numbers of the top-level "x" list, or null when there is none. */
function readX(config: string): f64[] | null {
  let at = config.indexOf('"x"');
  if (at < 0) return null;
  at += 3;
  while (at < config.length && (config.charAt(at) == ":" || config.charAt(at) == " ")) at++;
  if (at >= config.length || config.charAt(at) != "[") return null;
  const end = config.indexOf("]", at);
  if (end < 0) return null;
  const body = config.substring(at + 1, end).trim();
  const x = new Array<f64>();
  if (body.length == 0) return x;
  const parts = body.split(",");
  for (let i = 0; i < parts.length; i++) {
    const v = parseFloat(parts[i].trim());
    if (isNaN(v)) return null;
    x.push(v);
  }
  return x;
}

function ackley(x: f64[]): f64 {
  const n = <f64>x.length;
  let sumSq: f64 = 0;
  let sumCos: f64 = 0;
  for (let i = 0; i < x.length; i++) {
    sumSq += x[i] * x[i];
    sumCos += Math.cos(2 * Math.PI * x[i]);
  }
  return -20 * Math.exp(-0.2 * Math.sqrt(sumSq / n)) - Math.exp(sumCos / n) + 20 + Math.E;
}

/** The objective as JSON text, or an error message (`failed` tells which). */
export class Evaluation {
  constructor(public text: string, public failed: bool) {}
}

export function evaluate(config: string): Evaluation {
  const x = readX(config);
  if (x == null) return new Evaluation("x must be a list of numbers", true);
  if (x.length == 0) return new Evaluation("x must hold at least one coordinate", true);
  return new Evaluation((-ackley(x)).toString(), false);
}
