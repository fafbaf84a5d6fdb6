module wasmeval.example/ackley

go 1.24
