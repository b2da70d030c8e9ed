package bench

import "syscall"

// childAttr: if the benchmark itself is killed (SIGKILL skips its
// cleanup), the kernel kills the children too instead of leaving clusters
// behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
