//go:build component

// The canonical-ABI lowering of wasmeval's `objective` world (wit/objective.wit), by hand:
// exports `run`, `cabi_realloc` and `cabi_post_run`, imports the `job` interface. Built with
// -buildmode=c-shared (a WASI reactor), wasmeval componentizes it at load.
package main

import (
	"strconv"
	"unsafe"
)

//go:wasmimport wasmeval:objective/job@0.1.0 log
func jobLog(ptr unsafe.Pointer, length uint32)

//go:wasmimport wasmeval:objective/job@0.1.0 id
func jobID(ret unsafe.Pointer)

// pinned keeps every block handed to the host alive (one instance serves one job).
var pinned [][]byte

func alloc(size uint32) unsafe.Pointer {
	block := make([]byte, max(size, 1))
	pinned = append(pinned, block)
	return unsafe.Pointer(&block[0])
}

//go:wasmexport cabi_realloc
func cabiRealloc(old unsafe.Pointer, oldSize, align, newSize uint32) unsafe.Pointer {
	fresh := alloc(newSize)
	if old != nil {
		copy(unsafe.Slice((*byte)(fresh), newSize), unsafe.Slice((*byte)(old), min(oldSize, newSize)))
	}
	return fresh
}

func log(message string) {
	jobLog(unsafe.Pointer(unsafe.StringData(message)), uint32(len(message)))
}

func id() string {
	var ret [2]uint32
	jobID(unsafe.Pointer(&ret))
	return string(unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ret[0]))), ret[1]))
}

// returnArea is result<string, string>: a tag word, then the string's pointer and length.
var returnArea [3]uint32

//go:wasmexport run
func run(ptr unsafe.Pointer, length uint32) unsafe.Pointer {
	objective, err := evaluate(unsafe.Slice((*byte)(ptr), length))
	text := ""
	if err != nil {
		returnArea[0], text = 1, err.Error()
	} else {
		log("ackley in Go, job " + id())
		returnArea[0], text = 0, strconv.FormatFloat(objective, 'g', -1, 64)
	}
	out := alloc(uint32(len(text)))
	copy(unsafe.Slice((*byte)(out), len(text)), text)
	returnArea[1], returnArea[2] = uint32(uintptr(out)), uint32(len(text))
	return unsafe.Pointer(&returnArea)
}

//go:wasmexport cabi_post_run
func postRun(unsafe.Pointer) {}

func main() {}
