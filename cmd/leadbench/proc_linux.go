package main

import "syscall"

// childAttr makes the kernel kill a child when the benchmark dies, so an
// interrupted run leaves no redis-server or leadrouterd behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
