// Ackley in n dimensions, as a wasmeval run function in JavaScript.
//
// Configuration: {"x": [x1, x2, ...]}; result: -ackley(x) (DeepHyper maximizes).
// An empty or missing "x" is an error: throwing a string makes the job fail with that message.
//
// componentize-qjs turns this file into a component of wasmeval's `objective` world
// (wit/objective.wit), with QuickJS inside; the `job` interface is an ES module import.
import job from "wasmeval:objective/job@0.1.0";

function ackley(x) {
  const n = x.length;
  let sumSq = 0;
  let sumCos = 0;
  for (const v of x) {
    sumSq += v * v;
    sumCos += Math.cos(2 * Math.PI * v);
  }
  return -20 * Math.exp(-0.2 * Math.sqrt(sumSq / n)) - Math.exp(sumCos / n) + 20 + Math.E;
}

export function run(config) {
  const { x } = JSON.parse(config);
  if (!Array.isArray(x) || !x.every((v) => typeof v === "number")) {
    throw "x must be a list of numbers";
  }
  if (x.length === 0) throw "x must hold at least one coordinate";
  job.log(`ackley in JavaScript, job ${job.id()}`);
  return JSON.stringify(-ackley(x));
}
