//go:build !linux

package main

import "syscall"

// childAttr sets nothing outside Linux: an interrupted run may leave its
// children behind there.
func childAttr() *syscall.SysProcAttr { return nil }
