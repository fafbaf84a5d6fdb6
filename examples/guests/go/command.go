//go:build !component

package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
)

func main() {
	text, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot read the configuration:", err)
		os.Exit(2)
	}
	objective, err := evaluate(text)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(strconv.FormatFloat(objective, 'g', -1, 64))
}
