// Command fakebusybox stands in for a static busybox in imagebuild's tests: with --list it prints
// a few applet names, as busybox does.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--list" {
		fmt.Println("sh\nls\ncat\nbusybox\nsleep")
		return
	}
	fmt.Fprintln(os.Stderr, "fakebusybox: only --list is supported")
	os.Exit(1)
}
