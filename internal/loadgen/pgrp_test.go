package loadgen

import "syscall"

func syscallGetpgrp() int { return syscall.Getpgrp() }
