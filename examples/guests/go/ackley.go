// Ackley in n dimensions, as a wasmeval run function in Go.
//
// Configuration: {"x": [x1, x2, ...]}; result: -ackley(x) (DeepHyper maximizes).
// An empty or missing "x" is an error: the job fails with that message.
//
// One package, two builds (see build.sh): a WASI command (command.go: stdin to stdout) and, with
// the build tag `component`, an objective run function (component.go: the canonical-ABI `run`
// through //go:wasmexport, componentized by wasmeval at load).
package main

import (
	"encoding/json"
	"errors"
	"math"
)

type config struct {
	X *[]float64 `json:"x"`
}

func ackley(x []float64) float64 {
	n := float64(len(x))
	sumSq, sumCos := 0.0, 0.0
	for _, v := range x {
		sumSq += v * v
		sumCos += math.Cos(2 * math.Pi * v)
	}
	return -20*math.Exp(-0.2*math.Sqrt(sumSq/n)) - math.Exp(sumCos/n) + 20 + math.E
}

// evaluate returns the objective of a configuration given as JSON text.
func evaluate(text []byte) (float64, error) {
	var c config
	if err := json.Unmarshal(text, &c); err != nil || c.X == nil {
		return 0, errors.New("x must be a list of numbers")
	}
	if len(*c.X) == 0 {
		return 0, errors.New("x must hold at least one coordinate")
	}
	return -ackley(*c.X), nil
}
