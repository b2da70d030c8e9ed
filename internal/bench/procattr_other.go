//go:build !linux

package bench

import "syscall"

// childAttr: only Linux can have the kernel kill the children when the
// benchmark dies; elsewhere they are stopped by the benchmark's cleanup.
// (The benchmark reads /proc and so measures only on Linux, but the
// strait binary that holds it builds everywhere.)
func childAttr() *syscall.SysProcAttr { return nil }
